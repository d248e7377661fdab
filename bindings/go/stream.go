package grey

import (
	"runtime"
	"unsafe"

	"libgrey/grey/capi"
)

// HostMemory is host memory from grey_host_alloc: pinned where the device's backend can pin, and C
// memory in every case, so a Stream may keep using it after an async call returns (cgo forbids that
// for Go memory). Close frees it; closing the context frees it too.
type HostMemory struct {
	ctx  *Context
	addr uintptr
	size uint64
}

// NewHostMemory allocates size bytes (> 0) of host memory that device transfers from at full speed.
func (c *Context) NewHostMemory(device int, size uint64) (*HostMemory, error) {
	d, err := deviceIndex(device)
	if err != nil {
		return nil, err
	}
	var m *HostMemory
	err = c.with(func(h capi.Grey_context) error {
		out := []uintptr{0}
		if err := capi.Grey_host_alloc(h, d, size, out); err != nil {
			return err
		}
		m = &HostMemory{ctx: c, addr: out[0], size: size}
		return nil
	})
	if err != nil {
		return nil, err
	}
	runtime.SetFinalizer(m, (*HostMemory).Close)
	return m, nil
}

// Bytes is the memory as a slice, valid until Close.
func (m *HostMemory) Bytes() []byte {
	if m.addr == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(m.addr)), m.size)
}

// Close frees the memory; no pending async work may still use it. Safe to call more than once.
func (m *HostMemory) Close() error {
	if m.addr == 0 {
		return nil
	}
	addr := m.addr
	m.addr = 0
	runtime.SetFinalizer(m, nil)
	err := m.ctx.with(func(h capi.Grey_context) error { return capi.Grey_host_free(h, addr) })
	if err == ErrClosed {
		return nil // the context freed it
	}
	return err
}

// at is the address of size bytes at off, refused when they do not lie inside the memory.
func (m *HostMemory) at(off, size uint64) (uintptr, error) {
	if m.addr == 0 {
		return 0, ErrClosed
	}
	if off > m.size || size > m.size-off {
		return 0, &Error{Status: int(StatusInvalidArgument), Message: "grey: the range lies outside the host memory"}
	}
	return m.addr + uintptr(off), nil
}

// Stream is an ordered queue of work on one device: the async calls return once the work is
// enqueued, and Synchronize returns the first error the work found. Close waits for the work.
type Stream struct {
	ctx *Context
	id  uintptr
}

// NewStream creates a stream on device.
func (c *Context) NewStream(device int) (*Stream, error) {
	return c.newStream(device, func(h capi.Grey_context, d uint, out []uintptr) error {
		return capi.Grey_stream_create(h, d, out)
	})
}

// WrapStream returns a Stream over another library's stream on device (grey_stream_wrap_native): kind
// names its API (MemoryCUDADevice: handle is a CUstream; 0, 1 and 2 are CUDA's NULL, legacy and
// per-thread default streams). libgrey's async work then runs in order with that library's, and Wait
// makes it wait for an Event without blocking. The native stream stays the caller's and must outlive
// the Stream; Close waits only for what libgrey enqueued on it.
func (c *Context) WrapStream(device int, kind MemoryKind, handle uintptr) (*Stream, error) {
	return c.newStream(device, func(h capi.Grey_context, d uint, out []uintptr) error {
		return capi.Grey_stream_wrap_native(h, d, capi.Grey_memory_kind(kind), uint64(handle), out)
	})
}

func (c *Context) newStream(device int, create func(capi.Grey_context, uint, []uintptr) error) (*Stream, error) {
	d, err := deviceIndex(device)
	if err != nil {
		return nil, err
	}
	var s *Stream
	err = c.with(func(h capi.Grey_context) error {
		out := []uintptr{0}
		if err := create(h, d, out); err != nil {
			return err
		}
		s = &Stream{ctx: c, id: out[0]}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.streams[s.id] = struct{}{}
	c.mu.Unlock()
	runtime.SetFinalizer(s, (*Stream).Close)
	return s, nil
}

// Close waits for the stream's work, then frees it. Safe to call more than once.
func (s *Stream) Close() error {
	c := s.ctx
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, live := c.streams[s.id]; live {
		delete(c.streams, s.id)
		capi.Grey_stream_destroy(capi.SwigcptrGrey_stream(s.id))
	}
	runtime.SetFinalizer(s, nil)
	return nil
}

// with runs f while the stream and every buffer given are alive, under one read lock of the context
// (a read lock taken twice could wait behind a Close between the two).
func (s *Stream) with(f func(capi.Grey_stream) error, buffers ...*Buffer) error {
	c := s.ctx
	c.mu.RLock()
	defer c.mu.RUnlock()
	if _, live := c.streams[s.id]; !live {
		return ErrClosed
	}
	for _, b := range buffers {
		if b.ctx != c {
			return &Error{Status: int(StatusInvalidArgument), Message: "grey: the buffer belongs to another context than the stream"}
		}
		if _, live := c.buffers[b.id]; !live {
			return ErrClosed
		}
	}
	err := f(capi.SwigcptrGrey_stream(s.id))
	runtime.KeepAlive(s)
	runtime.KeepAlive(buffers)
	return err
}

func bufferHandle(b *Buffer) capi.Grey_buffer { return capi.SwigcptrGrey_buffer(b.id) }

// Synchronize waits for all enqueued work and returns the first error it found since the last call.
func (s *Stream) Synchronize() error {
	return s.with(func(h capi.Grey_stream) error { return capi.Grey_stream_synchronize(h) })
}

// Query reports whether all enqueued work has run (returning a kept error as Synchronize does).
func (s *Stream) Query() (bool, error) {
	done := []uint32{0}
	err := s.with(func(h capi.Grey_stream) error { return capi.Grey_stream_query(h, done) })
	return done[0] != 0, err
}

// Wait makes work enqueued after it wait for the event's latest record.
func (s *Stream) Wait(e *Event) error {
	if e.handle == nil {
		return ErrClosed
	}
	return s.with(func(h capi.Grey_stream) error { return capi.Grey_stream_wait_event(h, e.handle) })
}

// WriteAsync enqueues a copy of size bytes of src at srcOff into b at off.
func (s *Stream) WriteAsync(b *Buffer, off uint64, src *HostMemory, srcOff, size uint64) error {
	addr, err := src.at(srcOff, size)
	if err != nil {
		return err
	}
	return s.with(func(h capi.Grey_stream) error {
		return capi.Grey_buffer_write_async(bufferHandle(b), off, addr, size, h)
	}, b)
}

// ReadAsync enqueues a copy of size bytes of b at off into dst at dstOff.
func (s *Stream) ReadAsync(b *Buffer, off uint64, dst *HostMemory, dstOff, size uint64) error {
	addr, err := dst.at(dstOff, size)
	if err != nil {
		return err
	}
	return s.with(func(h capi.Grey_stream) error {
		return capi.Grey_buffer_read_async(bufferHandle(b), off, addr, size, h)
	}, b)
}

// CopyAsync enqueues a copy of size bytes from src at srcOff to dst at off (one device).
func (s *Stream) CopyAsync(dst *Buffer, off uint64, src *Buffer, srcOff, size uint64) error {
	return s.with(func(h capi.Grey_stream) error {
		return capi.Grey_buffer_copy_async(bufferHandle(dst), off, bufferHandle(src), srcOff, size, h)
	}, dst, src)
}

// FillAsync enqueues a fill of size bytes from off with value.
func (s *Stream) FillAsync(b *Buffer, off uint64, value byte, size uint64) error {
	return s.with(func(h capi.Grey_stream) error {
		return capi.Grey_buffer_fill_async(bufferHandle(b), off, value, size, h)
	}, b)
}

// ChecksumAsync enqueues grey_buffer_checksum of size bytes at off; the 8-byte result (host byte order)
// lands at dstOff of dst when the stream reaches it (read it with HostMemory.Uint64At).
func (s *Stream) ChecksumAsync(b *Buffer, off, size uint64, dst *HostMemory, dstOff uint64) error {
	addr, err := dst.at(dstOff, 8)
	if err != nil {
		return err
	}
	return s.with(func(h capi.Grey_stream) error {
		return capi.Grey_buffer_checksum_async(bufferHandle(b), off, size, addr, h)
	}, b)
}

// MapAsync maps b on the stream (grey_buffer_map_async), for writing when write is set: a sealed
// buffer that is not raw is decoded into the device's working-set cache by work on this stream, a raw
// buffer maps at once. The Mapping is filled now; its bytes are there once the stream reaches this
// point (Synchronize, or an Event recorded after). A failure of the mapping itself (the cache too
// small, a corrupted block) is returned by the next Synchronize; the Mapping then has Address 0 and
// still needs its Unmap, which is not enqueued: call it once the work reading the mapping is done.
func (s *Stream) MapAsync(b *Buffer, write bool) (*Mapping, error) {
	access := capi.GREY_MAP_READ
	if write {
		access = capi.GREY_MAP_WRITE
	}
	var m *Mapping
	err := s.with(func(h capi.Grey_stream) error {
		raw := capi.NewGrey_buffer_mapping()
		defer capi.DeleteGrey_buffer_mapping(raw)
		if err := capi.Grey_buffer_map_async(bufferHandle(b), capi.Grey_map_access(access), raw, h); err != nil {
			return err
		}
		m = &Mapping{Kind: MemoryKind(raw.GetKind()), Address: uintptr(raw.GetAddress()), Size: raw.GetSize_bytes(),
			VendorDevice: int(raw.GetVendor_device()), buffer: b}
		return nil
	}, b)
	return m, err
}

// Uint64At reads the 8 bytes at off in host byte order (a checksum written by ChecksumAsync).
func (m *HostMemory) Uint64At(off uint64) (uint64, error) {
	addr, err := m.at(off, 8)
	if err != nil {
		return 0, err
	}
	return *(*uint64)(unsafe.Pointer(addr)), nil
}

// Event is a point in a stream's work: Record it on one stream, Wait for it on another.
type Event struct {
	ctx    *Context
	handle capi.Grey_event
}

// NewEvent creates an event on device. Closing the context frees it too.
func (c *Context) NewEvent(device int) (*Event, error) {
	d, err := deviceIndex(device)
	if err != nil {
		return nil, err
	}
	var e *Event
	err = c.with(func(h capi.Grey_context) error {
		out := []uintptr{0}
		if err := capi.Grey_event_create(h, d, out); err != nil {
			return err
		}
		e = &Event{ctx: c, handle: capi.SwigcptrGrey_event(out[0])}
		return nil
	})
	return e, err
}

// Close frees the event. Safe to call more than once, and after the context is closed.
func (e *Event) Close() error {
	if e.handle == nil {
		return nil
	}
	handle := e.handle
	e.handle = nil
	_ = e.ctx.with(func(capi.Grey_context) error {
		capi.Grey_event_destroy(handle)
		return nil
	})
	return nil
}

func (e *Event) with(f func(capi.Grey_event) error) error {
	if e.handle == nil {
		return ErrClosed
	}
	return e.ctx.with(func(capi.Grey_context) error { return f(e.handle) })
}

// Record captures the work enqueued on s so far.
func (e *Event) Record(s *Stream) error {
	if e.handle == nil {
		return ErrClosed
	}
	return s.with(func(sh capi.Grey_stream) error { return capi.Grey_event_record(e.handle, sh) })
}

// Synchronize waits for the latest record and returns the error its stream had found by then.
func (e *Event) Synchronize() error {
	return e.with(func(h capi.Grey_event) error { return capi.Grey_event_synchronize(h) })
}

// Query reports whether the latest record has completed.
func (e *Event) Query() (bool, error) {
	done := []uint32{0}
	err := e.with(func(h capi.Grey_event) error { return capi.Grey_event_query(h, done) })
	return done[0] != 0, err
}

// ElapsedMs is the time in milliseconds from e's latest record to end's (one device); waits for both.
func (e *Event) ElapsedMs(end *Event) (float64, error) {
	ms := []float64{0}
	err := e.with(func(h capi.Grey_event) error {
		if end.handle == nil {
			return ErrClosed
		}
		return capi.Grey_event_elapsed_ms(h, end.handle, ms)
	})
	return ms[0], err
}

// QuantizeAsync enqueues grey_quantize_buffer_async: the plain tensor of dtype (F32, F16 or BF16) and
// shape at srcOff of src, quantized into format ("int8", "q4_0", ...; QuantSize bytes) at dstOff of dst.
// A NaN or infinite input is returned by the next Synchronize, in the synchronous call's words.
func (s *Stream) QuantizeAsync(src *Buffer, srcOff uint64, dtype DType, shape []uint64, format string, dst *Buffer, dstOff uint64) error {
	p, err := QuantParamsFromName(format)
	if err != nil {
		return err
	}
	desc, err := newDesc(dtype, shape)
	if err != nil {
		return err
	}
	defer capi.DeleteGrey_tensor_desc(desc)
	params := p.raw()
	defer capi.DeleteGrey_quant_params(params)
	return s.with(func(h capi.Grey_stream) error {
		return capi.Grey_quantize_buffer_async(desc, bufferHandle(src), srcOff, params, bufferHandle(dst), dstOff, h)
	}, src, dst)
}

// DequantizeAsync enqueues grey_dequantize_buffer_async: format at srcOff of src back to dtype (F32, F16
// or BF16) and shape at dstOff of dst.
func (s *Stream) DequantizeAsync(src *Buffer, srcOff uint64, format string, dtype DType, shape []uint64, dst *Buffer, dstOff uint64) error {
	p, err := QuantParamsFromName(format)
	if err != nil {
		return err
	}
	desc, err := newDesc(dtype, shape)
	if err != nil {
		return err
	}
	defer capi.DeleteGrey_tensor_desc(desc)
	params := p.raw()
	defer capi.DeleteGrey_quant_params(params)
	return s.with(func(h capi.Grey_stream) error {
		return capi.Grey_dequantize_buffer_async(desc, params, bufferHandle(src), srcOff, bufferHandle(dst), dstOff, h)
	}, src, dst)
}

// NativeHandle is the stream's own handle in its vendor's API, for other libraries to enqueue on the
// same queue: MemoryCUDADevice and a CUstream on a CUDA device. It belongs to the stream (valid until
// Close). The host device has none: an error wrapping ErrUnsupported says so.
func (s *Stream) NativeHandle() (MemoryKind, uintptr, error) {
	kind := []int{0}
	handle := []uint64{0}
	if err := s.with(func(h capi.Grey_stream) error { return capi.Grey_stream_native_handle(h, kind, handle) }); err != nil {
		return 0, 0, err
	}
	return MemoryKind(kind[0]), uintptr(handle[0]), nil
}
