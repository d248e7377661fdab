package grey

import (
	"fmt"
	"runtime"

	"libgrey/grey/capi"
)

// Buffer is memory on one device, owned by its context. It is an io.ReaderAt and io.WriterAt: the
// bytes are copied straight between the Go slice and the device. Reads may run concurrently;
// writes need external ordering. Close frees it (closing the context frees it too). Map gives its
// address, for handing it to another library.
type Buffer struct {
	ctx *Context
	id  uintptr
}

// NewBuffer allocates size bytes (> 0) on device.
func (c *Context) NewBuffer(device int, size uint64) (*Buffer, error) {
	d, err := deviceIndex(device)
	if err != nil {
		return nil, err
	}
	var b *Buffer
	err = c.with(func(h capi.Grey_context) error {
		out := []uintptr{0}
		if err := capi.Grey_buffer_create(h, d, size, out); err != nil {
			return err
		}
		b = &Buffer{ctx: c, id: out[0]}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.buffers[b.id] = struct{}{}
	c.mu.Unlock()
	runtime.SetFinalizer(b, (*Buffer).Close)
	return b, nil
}

// Close frees the buffer. Safe to call more than once, and after the context is closed.
func (b *Buffer) Close() error {
	c := b.ctx
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, live := c.buffers[b.id]; live {
		delete(c.buffers, b.id)
		capi.Grey_buffer_destroy(capi.SwigcptrGrey_buffer(b.id))
	}
	runtime.SetFinalizer(b, nil)
	return nil
}

func (b *Buffer) with(f func(capi.Grey_buffer) error) error {
	c := b.ctx
	c.mu.RLock()
	defer c.mu.RUnlock()
	if _, live := c.buffers[b.id]; !live {
		return ErrClosed
	}
	err := f(capi.SwigcptrGrey_buffer(b.id))
	runtime.KeepAlive(b)
	return err
}

func offset(off int64) (uint64, error) {
	if off < 0 {
		return 0, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: negative offset %d", off)}
	}
	return uint64(off), nil
}

// Size is the buffer's size in bytes.
func (b *Buffer) Size() (uint64, error) {
	n := []uint64{0}
	err := b.with(func(h capi.Grey_buffer) error { return capi.Grey_buffer_size(h, n) })
	return n[0], err
}

// Device is the index of the device the buffer lives on.
func (b *Buffer) Device() (int, error) {
	d := []uint32{0}
	err := b.with(func(h capi.Grey_buffer) error { return capi.Grey_buffer_device(h, d) })
	return int(d[0]), err
}

// WriteAt copies p into the buffer at off. The whole range must lie inside the buffer.
func (b *Buffer) WriteAt(p []byte, off int64) (int, error) {
	o, err := offset(off)
	if err != nil {
		return 0, err
	}
	if err := b.with(func(h capi.Grey_buffer) error { return capi.Grey_buffer_write(h, o, p) }); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadAt fills p from the buffer at off. The whole range must lie inside the buffer.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	o, err := offset(off)
	if err != nil {
		return 0, err
	}
	if err := b.with(func(h capi.Grey_buffer) error { return capi.Grey_buffer_read(h, o, p) }); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Fill sets size bytes from off to value.
func (b *Buffer) Fill(value byte, off, size uint64) error {
	return b.with(func(h capi.Grey_buffer) error { return capi.Grey_buffer_fill(h, off, value, size) })
}

// CopyFrom copies size bytes from src at srcOff to b at off (same context; across devices through host memory).
func (b *Buffer) CopyFrom(src *Buffer, off, srcOff, size uint64) error {
	if src.ctx != b.ctx {
		return &Error{Status: int(StatusInvalidArgument), Message: "grey: buffers of different contexts"}
	}
	return b.with(func(h capi.Grey_buffer) error {
		if _, live := b.ctx.buffers[src.id]; !live {
			return ErrClosed
		}
		err := capi.Grey_buffer_copy(h, off, capi.SwigcptrGrey_buffer(src.id), srcOff, size)
		runtime.KeepAlive(src)
		return err
	})
}

// MemoryKind is where a mapping's address points.
type MemoryKind int

const (
	MemoryHost       MemoryKind = 0 // host memory the CPU dereferences
	MemoryCUDADevice MemoryKind = 1 // a CUdeviceptr on CUDA device VendorDevice
)

func (k MemoryKind) String() string {
	switch k {
	case MemoryHost:
		return "host"
	case MemoryCUDADevice:
		return "cuda"
	}
	return fmt.Sprintf("MemoryKind(%d)", int(k))
}

// Mapping is a mapped buffer (grey_buffer_map): the address of its bytes, valid until Unmap.
type Mapping struct {
	Kind         MemoryKind
	Address      uintptr
	Size         uint64
	VendorDevice int // the device's number in its vendor's API (CUDA: the ordinal), not libgrey's index
	buffer       *Buffer
	done         bool
}

// Map maps the whole buffer for reading and writing; every Map needs its Unmap. The address is the
// buffer's own memory: writes through it are what ReadAt sees.
func (b *Buffer) Map() (*Mapping, error) {
	var m *Mapping
	err := b.with(func(h capi.Grey_buffer) error {
		raw := capi.NewGrey_buffer_mapping()
		defer capi.DeleteGrey_buffer_mapping(raw)
		if err := capi.Grey_buffer_map(h, raw); err != nil {
			return err
		}
		m = &Mapping{Kind: MemoryKind(raw.GetKind()), Address: uintptr(raw.GetAddress()), Size: raw.GetSize_bytes(),
			VendorDevice: int(raw.GetVendor_device()), buffer: b}
		return nil
	})
	return m, err
}

// Unmap ends the mapping; its address must not be used afterwards. Safe to call more than once.
func (m *Mapping) Unmap() error {
	if m.done {
		return nil
	}
	m.done = true
	return m.buffer.with(func(h capi.Grey_buffer) error { return capi.Grey_buffer_unmap(h) })
}
