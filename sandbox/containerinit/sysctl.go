package containerinit

// WriteSysctl sets sysctl key ("net.ipv4.ip_forward" or
// "net/ipv4/ip_forward") to value through /proc/sys, in the namespaces of
// the calling thread. The pod init sets the pod's sysctls with it.
func WriteSysctl(key, value string) error { return writeSysctl(key, value) }
