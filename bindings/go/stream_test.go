package grey_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"libgrey/grey"
)

func TestStreamsOrderWorkAndEventsOrderStreams(t *testing.T) {
	ctx := newContext(t)
	const size = 1 << 16
	buf, err := ctx.NewBuffer(0, size)
	if err != nil {
		t.Fatal(err)
	}
	copyBuf, err := ctx.NewBuffer(0, size)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ctx.NewHostMemory(0, 2*size+8)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	producer, err := ctx.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	consumer, err := ctx.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ready, err := ctx.NewEvent(0)
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()

	data := host.Bytes()[:size]
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := producer.WriteAsync(buf, 0, host, 0, size); err != nil {
		t.Fatal(err)
	}
	if err := producer.CopyAsync(copyBuf, 0, buf, 0, size); err != nil {
		t.Fatal(err)
	}
	if err := producer.FillAsync(copyBuf, 0, 0x5A, 16); err != nil {
		t.Fatal(err)
	}
	if err := ready.Record(producer); err != nil {
		t.Fatal(err)
	}
	if err := consumer.Wait(ready); err != nil {
		t.Fatal(err)
	}
	if err := consumer.ReadAsync(copyBuf, 0, host, size, size); err != nil {
		t.Fatal(err)
	}
	if err := consumer.ChecksumAsync(copyBuf, 0, size, host, 2*size); err != nil {
		t.Fatal(err)
	}
	if err := consumer.Synchronize(); err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte{0x5A}, 16), data[16:]...)
	if !bytes.Equal(host.Bytes()[size:2*size], want) {
		t.Error("the consumer read other bytes than the producer wrote")
	}
	got, err := host.Uint64At(2 * size)
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for i, b := range want {
		sum += (uint64(b) + 1) * (uint64(i)*0x9E3779B97F4A7C15 + 0xD6E8FEB86659FD93)
	}
	if got != sum {
		t.Errorf("checksum %x, want %x", got, sum)
	}
	if done, err := ready.Query(); !done || err != nil {
		t.Errorf("event query %v %v", done, err)
	}
	if ms, err := ready.ElapsedMs(ready); ms != 0 || err != nil {
		t.Errorf("elapsed %v %v", ms, err)
	}
}

func TestStreamsRefuseBadInput(t *testing.T) {
	ctx := newContext(t)
	buf, err := ctx.NewBuffer(0, 64)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ctx.NewHostMemory(0, 64)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := ctx.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	var e *grey.Error
	if err := stream.WriteAsync(buf, 32, host, 0, 64); !errors.As(err, &e) || e.Status != int(grey.StatusInvalidArgument) {
		t.Errorf("out-of-range write: %v", err)
	}
	if err := stream.ReadAsync(buf, 0, host, 32, 64); !errors.As(err, &e) {
		t.Errorf("read past the host memory: %v", err)
	}
	never, err := ctx.NewEvent(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := never.Synchronize(); !errors.As(err, &e) || e.Status != int(grey.StatusInvalidArgument) {
		t.Errorf("an event never recorded: %v", err)
	}
	if _, err := ctx.NewStream(99); err == nil {
		t.Error("a stream on device 99")
	}
	if err := stream.Close(); err != nil {
		t.Fatal(err)
	}
	if err := stream.Synchronize(); err != grey.ErrClosed {
		t.Errorf("synchronize after close: %v", err)
	}
	// Closing the context frees what is left; closing those afterwards is harmless.
	if err := ctx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := host.Close(); err != nil {
		t.Errorf("host memory after the context: %v", err)
	}
	if err := never.Close(); err != nil {
		t.Errorf("event after the context: %v", err)
	}
}

func TestQuantizeAsyncGivesTheSynchronousBytesAndNaNAtSynchronize(t *testing.T) {
	ctx := newContext(t)
	shape := []uint64{4, 256}
	values := make([]float32, 4*256)
	for i := range values {
		values[i] = float32(i%97)*0.125 - 4
	}
	want, err := grey.Quantize(grey.Float32Tensor(values, shape...), "q4_0", grey.CalibrationRTN)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ctx.NewHostMemory(0, uint64(len(values)*4+len(want.Data)))
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	plain := grey.Float32Tensor(values, shape...).Data
	copy(host.Bytes(), plain)
	src, err := ctx.NewBuffer(0, uint64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := ctx.NewBuffer(0, uint64(len(want.Data)))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := ctx.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if err := stream.WriteAsync(src, 0, host, 0, uint64(len(plain))); err != nil {
		t.Fatal(err)
	}
	if err := stream.QuantizeAsync(src, 0, grey.DTypeF32, shape, "q4_0", dst, 0); err != nil {
		t.Fatal(err)
	}
	if err := stream.ReadAsync(dst, 0, host, uint64(len(plain)), uint64(len(want.Data))); err != nil {
		t.Fatal(err)
	}
	if err := stream.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(host.Bytes()[len(plain):], want.Data) {
		t.Fatal("QuantizeAsync gave other bytes than Quantize")
	}
	nan := []byte{0, 0, 0xC0, 0x7F} // a quiet NaN, little-endian
	copy(host.Bytes()[4*10:], nan)
	if err := stream.WriteAsync(src, 0, host, 0, uint64(len(plain))); err != nil {
		t.Fatal(err)
	}
	if err := stream.QuantizeAsync(src, 0, grey.DTypeF32, shape, "q4_0", dst, 0); err != nil {
		t.Fatal(err)
	}
	if err := stream.Synchronize(); !errors.Is(err, grey.ErrInvalidArgument) || !strings.Contains(err.Error(), "element 10 is NaN") {
		t.Fatalf("Synchronize after a NaN input: %v", err)
	}
}

func TestHostStreamsHaveNoNativeHandle(t *testing.T) {
	ctx := newContext(t)
	stream, err := ctx.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if _, _, err := stream.NativeHandle(); !errors.Is(err, grey.ErrUnsupported) || !strings.Contains(err.Error(), "no native streams") {
		t.Fatalf("NativeHandle on the host device: %v", err)
	}
}

func TestWrapStreamRefusesTheHostDevice(t *testing.T) {
	ctx := newContext(t)
	if _, err := ctx.WrapStream(0, grey.MemoryCUDADevice, 1); !errors.Is(err, grey.ErrUnsupported) ||
		!strings.Contains(err.Error(), "device 0 of backend 'host' has no native streams to wrap") {
		t.Fatalf("WrapStream on the host device: %v", err)
	}
	if _, err := ctx.WrapStream(-1, grey.MemoryCUDADevice, 1); err == nil {
		t.Fatal("WrapStream accepted device -1")
	}
}

func TestMapAsyncMapsARawBufferAtOnceAndRefusesAForeignStream(t *testing.T) {
	ctx := newContext(t)
	data := []byte("layer by layer through the working set")
	buf, err := ctx.NewBuffer(0, uint64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buf.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	stream, err := ctx.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	m, err := stream.MapAsync(buf, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Synchronize(); err != nil {
		t.Fatal(err)
	}
	direct, err := buf.Map()
	if err != nil {
		t.Fatal(err)
	}
	if m.Address == 0 || m.Address != direct.Address || m.Size != uint64(len(data)) {
		t.Errorf("async mapping %+v, direct %+v", m, direct)
	}
	if got := unsafe.Slice((*byte)(unsafe.Pointer(m.Address)), len(data)); !bytes.Equal(got, data) {
		t.Errorf("mapped bytes %q", got)
	}
	if err := direct.Unmap(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmap(); err != nil {
		t.Fatal(err)
	}
	other := newContext(t)
	foreign, err := other.NewStream(0)
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	var e *grey.Error
	if _, err := foreign.MapAsync(buf, false); !errors.As(err, &e) || e.Status != int(grey.StatusInvalidArgument) {
		t.Errorf("a stream of another context: %v", err)
	}
}
