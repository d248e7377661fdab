package grey_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"libgrey/grey"
)

func float32Bytes(values []float32) []byte {
	out := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

func TestStreamedWriterGivesTheBytesOfTheOneShotWriter(t *testing.T) {
	dir := t.TempDir()
	a, b := []float32{1, 2, 3, 4, 5, 6}, []float32{-1, 0.5}
	oneShot := filepath.Join(dir, "one-shot.gguf")
	w, err := grey.NewModelWriter("gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.AddTensor("a", grey.Float32Tensor(a, 2, 3), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", grey.Float32Tensor(b, 2), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(oneShot); err != nil {
		t.Fatal(err)
	}

	streamed := filepath.Join(dir, "streamed.gguf")
	s, err := grey.NewModelWriter("gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, decl := range []struct {
		name  string
		shape []uint64
	}{{"a", []uint64{2, 3}}, {"b", []uint64{2}}} {
		if index, err := s.DeclareTensor(decl.name, grey.DTypeF32, decl.shape, 0); err != nil || index != i {
			t.Fatalf("DeclareTensor(%s) = %d, %v", decl.name, index, err)
		}
	}
	if err := s.Open(streamed, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("Finish with no bytes written: %v", err)
	}
	for _, step := range []struct {
		index int
		data  []byte
	}{{1, float32Bytes(b)}, {0, float32Bytes(a[:2])}, {0, float32Bytes(a[2:])}} {
		if err := s.WriteTensor(step.index, step.data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(streamed); !os.IsNotExist(err) {
		t.Errorf("the file exists before Finish: %v", err)
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(oneShot)
	got, _ := os.ReadFile(streamed)
	if !bytes.Equal(got, want) {
		t.Errorf("streamed file differs from the one-shot file (%d vs %d bytes)", len(got), len(want))
	}

	again, _ := grey.NewModelWriter("gguf")
	defer again.Close()
	again.DeclareTensor("a", grey.DTypeF32, []uint64{1}, 0)
	if err := again.Open(streamed, false); !errors.Is(err, grey.ErrIO) {
		t.Errorf("Open over an existing file without replace: %v", err)
	}

	m, err := grey.OpenModel(streamed)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Evict(0); err != nil {
		t.Fatal(err)
	}
	tensor, err := m.Tensor(0)
	if err != nil || !bytes.Equal(tensor.Data, float32Bytes(a)) {
		t.Errorf("tensor after Evict: %v", err)
	}
}
