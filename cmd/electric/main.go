// Command electric is the Electric replication engine and its developer tool.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:]))
}
