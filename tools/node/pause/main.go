// The pod sandbox's process (the "pause" container): holds the pod's namespaces open, reaps
// orphaned children, and exits on SIGTERM or SIGINT. Built static and imported into the real
// node's containerd by tools/node.sh, because no registry with the upstream image is reachable.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
