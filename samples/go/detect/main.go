// Command detect lists every device libgrey sees: name, memory and compute units.
//
//	go run ./samples/go/detect
package main

import (
	"fmt"
	"os"

	"libgrey/grey"
)

func dash(value uint64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprint(value)
}

func main() {
	ctx, err := grey.NewContext()
	if err != nil {
		fmt.Fprintln(os.Stderr, "detect:", err)
		os.Exit(1)
	}
	defer ctx.Close()
	devices, err := ctx.Devices()
	if err != nil {
		fmt.Fprintln(os.Stderr, "detect:", err)
		os.Exit(1)
	}
	fmt.Printf("libgrey %s: %d device(s)\n", grey.Version(), len(devices))
	for _, d := range devices {
		name, ok := d.Text("name")
		if !ok {
			name = "-"
		}
		memory, memOK := d.Uint("memory_total_bytes")
		units, unitsOK := d.Uint("compute_units")
		fmt.Printf("device %d: %s, memory %s bytes, %s compute units\n", d.Index, name, dash(memory, memOK), dash(units, unitsOK))
	}
}
