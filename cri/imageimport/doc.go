// Package imageimport is cubbyd's admin endpoint for loading image
// archives, and its client.
//
// cubbyd holds the image store (and the lock on its database), so the
// `cubby import` CLI cannot open the store itself. Instead cubbyd serves
// HTTP on a unix socket (mode 0600, root only: importing is as powerful as
// pulling), and the CLI streams the archive to it:
//
//	POST /images/import     body: a docker-save or OCI-layout tar
//	200 {"images":[{"id":"sha256:…","repoTags":[…],"repoDigests":[…]}]}
//	4xx/5xx {"error":"…"}
//
// The archive is never buffered in memory; the store spools it to disk.
package imageimport
