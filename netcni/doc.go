// Package netcni owns pod networking through CNI plugins.
//
// It loads the network configuration (the lexically first usable file in
// the conf dir, or a built-in bridge network when there is none), re-reads
// it when the conf dir changes, checks that the plugin binaries it needs
// exist, and runs CNI ADD and DEL for a pod sandbox whose network namespace
// is pinned to a file. No loopback plugin runs: the pod init brings up lo
// in the namespace it is born in, which saves a plugin exec on every ADD
// and DEL (as CRI-O does).
//
// netcni runs in cubbyd, in the host network namespace. It never enters a
// namespace itself: the plugins it executes do.
//
// Results of ADD are cached by libcni under Config.CacheDir; DEL prefers the
// cached configuration so that an IP is released with the configuration that
// allocated it even if the operator changed the conf dir in between.
package netcni
