package testimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ServeAuth is Serve for a registry that requires user:password through
// the distribution token flow: /v2/ answers 401 with a Bearer challenge
// naming the token endpoint /token, which hands out a token for valid
// basic credentials only.
func ServeAuth(ctx context.Context, img v1.Image, user, password string) (*Registry, error) {
	wrap := func(h http.Handler, host string) http.Handler {
		return &tokenAuth{next: h, host: host, user: user, password: password, tokens: map[string]bool{}}
	}
	return serve(ctx, img, wrap, &authn.Basic{Username: user, Password: password})
}

type tokenAuth struct {
	next           http.Handler
	host           string
	user, password string

	mu     sync.Mutex
	tokens map[string]bool
}

func (a *tokenAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		a.token(w, r)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.Lock()
	valid := ok && a.tokens[tok]
	a.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="testimage"`, a.host))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return
	}
	a.next.ServeHTTP(w, r)
}

func (a *tokenAuth) token(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || u != a.user || p != a.password {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	a.mu.Lock()
	a.tokens[tok] = true
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
}
