// Command pause is the pod sandbox's placeholder process: it sleeps, reaps orphaned children (it is PID 1 of
// the pod's shared PID namespace when that is enabled) and exits cleanly on SIGINT or SIGTERM.
// Upstream's pause is a C program; this does the same job and builds from the Go toolchain alone.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
