// Command async shows streams, events and an async quantization: one stream uploads a tensor, a second
// waits for it through an event, quantizes it to q4_0 in four row blocks, checksums and reads the result
// back, all before one Synchronize; then a NaN input fails at Synchronize with the synchronous call's
// message.
//
//	go run ./samples/go/async [DEVICE]
//
// DEVICE (default 0, the host) is the device the streams run on. The input is the synthetic 256 x 512
// tensor of samples/go/quantize; every async sample in samples/ prints the same lines.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"unsafe"

	"libgrey/grey"
)

const rows, cols, blocks = 256, 512, 4

// synthetic is an LCG whose values are exact in float32, so every language makes the same tensor.
func synthetic(values []float32) {
	state := uint32(12345)
	for i := range values {
		state = state*1664525 + 1013904223
		values[i] = (float32(state>>8)/16777216 - 0.5) / 16
	}
}

func run(device int) error {
	ctx, err := grey.NewContext()
	if err != nil {
		return err
	}
	defer ctx.Close()
	shape, blockShape := []uint64{rows, cols}, []uint64{rows / blocks, cols}
	packedBytes, err := grey.QuantSize(shape, "q4_0")
	if err != nil {
		return err
	}
	blockBytes, err := grey.QuantSize(blockShape, "q4_0")
	if err != nil {
		return err
	}
	const plainBytes = rows * cols * 4

	// C memory the streams use after the calls return (cgo forbids that for Go memory).
	host, err := ctx.NewHostMemory(device, plainBytes+packedBytes+8)
	if err != nil {
		return err
	}
	defer host.Close()
	values := unsafe.Slice((*float32)(unsafe.Pointer(&host.Bytes()[0])), rows*cols)
	synthetic(values)
	expected, err := grey.Quantize(grey.Float32Tensor(values, shape...), "q4_0", grey.CalibrationRTN)
	if err != nil {
		return err
	}

	plain, err := ctx.NewBuffer(device, plainBytes)
	if err != nil {
		return err
	}
	defer plain.Close()
	quantized, err := ctx.NewBuffer(device, packedBytes)
	if err != nil {
		return err
	}
	defer quantized.Close()
	upload, err := ctx.NewStream(device)
	if err != nil {
		return err
	}
	defer upload.Close()
	work, err := ctx.NewStream(device)
	if err != nil {
		return err
	}
	defer work.Close()
	uploaded, err := ctx.NewEvent(device)
	if err != nil {
		return err
	}
	defer uploaded.Close()

	steps := []func() error{
		func() error { return upload.WriteAsync(plain, 0, host, 0, plainBytes) },
		func() error { return uploaded.Record(upload) },
		func() error { return work.Wait(uploaded) },
	}
	for i := uint64(0); i < blocks; i++ {
		i := i
		steps = append(steps, func() error {
			return work.QuantizeAsync(plain, i*plainBytes/blocks, grey.DTypeF32, blockShape, "q4_0", quantized, i*blockBytes)
		})
	}
	steps = append(steps,
		func() error { return work.ChecksumAsync(quantized, 0, packedBytes, host, plainBytes+packedBytes) },
		func() error { return work.ReadAsync(quantized, 0, host, plainBytes, packedBytes) },
		work.Synchronize, upload.Synchronize)
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if !bytes.Equal(host.Bytes()[plainBytes:plainBytes+packedBytes], expected.Data) {
		return errors.New("the async quantization differs from the synchronous one")
	}
	checksum, err := host.Uint64At(plainBytes + packedBytes)
	if err != nil {
		return err
	}
	fmt.Printf("async input: synthetic [%d, %d] F32\n", rows, cols)
	fmt.Printf("async q4_0: %d quantizations of [%d, %d] on 2 streams, %d bytes, checksum %016x, equal to the synchronous call\n",
		blocks, rows/blocks, cols, packedBytes, checksum)

	// A NaN input: the failure arrives at Synchronize, in the words of the synchronous call.
	values[5] = float32(math.NaN())
	if err := upload.WriteAsync(plain, 0, host, 0, plainBytes); err != nil {
		return err
	}
	if err := upload.Synchronize(); err != nil {
		return err
	}
	_, synchronous := grey.Quantize(grey.Float32Tensor(values, shape...), "q4_0", grey.CalibrationRTN)
	if err := work.QuantizeAsync(plain, 0, grey.DTypeF32, blockShape, "q4_0", quantized, 0); err != nil {
		return err
	}
	later := work.Synchronize()
	if !errors.Is(synchronous, grey.ErrInvalidArgument) || later == nil || later.Error() != synchronous.Error() {
		return fmt.Errorf("a NaN input gave %v at Synchronize, %v synchronously", later, synchronous)
	}
	fmt.Println("async nan: refused at synchronize with the synchronous call's message")
	return nil
}

func main() {
	device := 0
	if len(os.Args) > 1 {
		d, err := strconv.Atoi(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "async: DEVICE must be a number:", err)
			os.Exit(2)
		}
		device = d
	}
	if err := run(device); err != nil {
		fmt.Fprintln(os.Stderr, "async:", err)
		os.Exit(1)
	}
}
