// Command standin is the one program inside the stand-ins that `make
// critest` builds for the upstream images critest pulls (nginx, httpd,
// nonewprivs, hostnet-nginx). It is linked statically and installed under
// the names those images run, and acts by the name it was started as:
//
//	nginx             web server: re-executes itself so that its command
//	                  line reads "nginx: master process …", writes
//	                  /var/run/nginx.pid and serves on $STANDIN_PORT (80)
//	httpd, httpd-foreground
//	                  web server on $STANDIN_PORT (80) that logs "httpd: …"
//	nnp               prints "Effective uid: N" (installed setuid root, it
//	                  shows whether no_new_privs let the setuid bit work)
//
// It runs inside test containers only; it is not part of cubby.
package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

const masterPrefix = "nginx: master process"

func main() {
	name := filepath.Base(os.Args[0])
	var err error
	switch {
	case strings.HasPrefix(os.Args[0], masterPrefix):
		err = nginxMaster()
	case name == "nginx":
		err = reexecAsMaster()
	case name == "httpd" || name == "httpd-foreground":
		err = serve("httpd")
	case name == "nnp":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	default:
		err = fmt.Errorf("unknown name %q (nginx, httpd, httpd-foreground, nnp)", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// reexecAsMaster replaces this process with itself under nginx's master
// process title; the kernel's comm stays "nginx" (the file's name).
func reexecAsMaster() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	title := strings.Join(append([]string{masterPrefix, "nginx"}, os.Args[1:]...), " ")
	return syscall.Exec(exe, []string{title}, os.Environ())
}

func nginxMaster() error {
	if err := os.MkdirAll("/var/run", 0o755); err != nil {
		return err
	}
	if err := os.WriteFile("/var/run/nginx.pid", fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		return err
	}
	return serve("nginx")
}

// serve answers every GET with a welcome page until SIGTERM, SIGQUIT or
// SIGINT.
func serve(name string) error {
	port := os.Getenv("STANDIN_PORT")
	if port == "" {
		port = "80"
	}
	page := fmt.Sprintf("<html><body><h1>Welcome to %s!</h1></body></html>\n", name)
	srv := &http.Server{
		Addr: ":" + port,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(page))
		}),
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
	go func() {
		<-sigs
		_ = srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "%s: serving on :%s\n", name, port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
