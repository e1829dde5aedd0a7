// Command cubby is the operator CLI of the cubby runtime. It talks to any
// CRI endpoint (cubbyd by default) through the CRI client.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cmd/internal/buildinfo"
)

const usage = `usage: cubby [--endpoint unix:///run/cubby/cubby.sock] COMMAND

commands:
  version        client and runtime versions (--client: the client's only)
  pull IMAGE     pull an image
  images         list images
  import FILE    load a docker save or OCI layout archive (via cubbyd's admin socket)
  pods           list pod sandboxes
  ps             list containers
`

func main() {
	endpoint := flag.String("endpoint", "unix:///run/cubby/cubby.sock", "CRI endpoint")
	timeout := flag.Duration("timeout", 2*time.Minute, "timeout of each call")
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*endpoint, *timeout, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "cubby: %v\n", err)
		os.Exit(1)
	}
}

func run(endpoint string, timeout time.Duration, args []string) error {
	// Commands with their own flags and files.
	switch args[0] {
	case "version":
		if len(args) > 1 && args[1] == "--client" {
			return printClientVersion(os.Stdout)
		}
	case "import":
		return cmdImport(args[1:])
	case "bench":
		return cmdBench(args[1:])
	}
	target := endpoint
	if !strings.Contains(target, "://") {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	img := runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()

	switch args[0] {
	case "version":
		if len(args) > 1 {
			return fmt.Errorf("version takes no arguments but --client")
		}
		v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
		if err != nil {
			return err
		}
		info := buildinfo.Get()
		fmt.Fprintf(w, "ClientVersion:\t%s\nClientCommit:\t%s\nClientGoVersion:\t%s\n", info.Version, info.Commit, info.GoVersion)
		fmt.Fprintf(w, "RuntimeName:\t%s\nRuntimeVersion:\t%s\nRuntimeApiVersion:\t%s\n", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)
	case "pull":
		if len(args) != 2 {
			return fmt.Errorf("pull takes one image reference")
		}
		r, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: args[1]}})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, r.ImageRef)
	case "images":
		r, err := img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "IMAGE\tID\tSIZE")
		for _, i := range r.Images {
			names := strings.Join(i.RepoTags, ",")
			if names == "" {
				names = strings.Join(i.RepoDigests, ",")
			}
			if names == "" {
				names = "<none>"
			}
			fmt.Fprintf(w, "%s\t%.19s\t%d\n", names, i.Id, i.Size)
		}
	case "pods":
		r, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "POD ID\tNAME\tNAMESPACE\tSTATE")
		for _, p := range r.Items {
			fmt.Fprintf(w, "%.13s\t%s\t%s\t%s\n", p.Id, p.Metadata.GetName(), p.Metadata.GetNamespace(), p.State)
		}
	case "ps":
		r, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "CONTAINER\tNAME\tPOD ID\tSTATE")
		for _, c := range r.Containers {
			fmt.Fprintf(w, "%.13s\t%s\t%.13s\t%s\n", c.Id, c.Metadata.GetName(), c.PodSandboxId, c.State)
		}
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
	return nil
}

// printClientVersion prints this binary's build without contacting cubbyd.
func printClientVersion(w io.Writer) error {
	_, err := fmt.Fprintln(w, "cubby", buildinfo.Get())
	return err
}
