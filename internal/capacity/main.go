// Command capacity measures what Lockbox costs Redis.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	mode := flag.String("mode", "idle", "idle")
	counts := flag.String("tenants", "10,10000", "tenant counts")
	window := flag.Duration("window", 20*time.Second, "measurement window")
	warm := flag.Duration("warmup", 15*time.Second, "warm-up")
	scrape := flag.Duration("scrape", 15*time.Second, "metrics scrape interval")
	flag.Parse()
	var ns []int
	for s := range strings.SplitSeq(*counts, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	var err error
	switch *mode {
	case "idle":
		err = idle(os.Stdout, ns, *window, *warm, *scrape)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "capacity:", err)
		os.Exit(1)
	}
}
