// Command quantize quantizes one real weight matrix in every format libgrey knows and prints each
// format's error.
//
//	go run ./samples/go/quantize [MODEL.safetensors|MODEL.gguf]
//
// The input is the first two-dimensional F32, F16 or BF16 tensor whose rows are a multiple of 128
// long (so that every format can hold it) of the model named on the command line, or else of the
// all-MiniLM-L6-v2 weights scripts/fetch-model.sh caches. Without either, a deterministic synthetic
// 256 x 512 tensor stands in, and the sample says so. Every sample in samples/ picks the same input
// the same way and prints the same lines.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"libgrey/grey"
)

// defaultModel is $GREY_CACHE_DIR, else $XDG_CACHE_HOME/libgrey, else ~/.cache/libgrey (as
// scripts/fetch-model.sh), then all-minilm-l6-v2/model.safetensors.
func defaultModel() string {
	cache := os.Getenv("GREY_CACHE_DIR")
	if cache == "" {
		if xdg := os.Getenv("XDG_CACHE_HOME"); xdg != "" {
			cache = filepath.Join(xdg, "libgrey")
		} else {
			home := os.Getenv("HOME")
			if home == "" {
				home = "."
			}
			cache = filepath.Join(home, ".cache", "libgrey")
		}
	}
	return filepath.Join(cache, "all-minilm-l6-v2", "model.safetensors")
}

// synthetic is an LCG whose values are exact in float32, so every language makes the same tensor.
func synthetic(n int) []float32 {
	values := make([]float32, n)
	state := uint32(12345)
	for i := range values {
		state = state*1664525 + 1013904223
		values[i] = (float32(state>>8)/16777216 - 0.5) / 16
	}
	return values
}

func reportEveryFormat(t grey.Tensor) error {
	for _, name := range grey.QuantFormats() {
		q, err := grey.Quantize(t, name, grey.CalibrationRTN)
		if err != nil {
			return err
		}
		r := q.Report
		fmt.Printf("quantize %s: bits_per_weight %.4f rel_rmse %.8f sqnr_db %.4f max_abs_err %.8f\n", name,
			r.BitsPerWeight, r.RelRMSE, r.SQNRdB, r.MaxAbsErr)
	}
	return nil
}

func run() error {
	path := defaultModel()
	if len(os.Args) > 1 {
		path = os.Args[1]
	} else if _, err := os.Stat(path); err != nil {
		fmt.Printf("note: no model at %s (scripts/fetch-model.sh fetches one): using a synthetic tensor\n", path)
		fmt.Println("input: synthetic [256, 512] F32")
		return reportEveryFormat(grey.Float32Tensor(synthetic(256*512), 256, 512))
	}
	model, err := grey.OpenModel(path)
	if err != nil {
		return err
	}
	defer model.Close()
	tensors, err := model.Tensors()
	if err != nil {
		return err
	}
	for _, t := range tensors {
		plain := t.DType == grey.DTypeF32 || t.DType == grey.DTypeF16 || t.DType == grey.DTypeBF16
		if plain && len(t.Shape) == 2 && t.Shape[1]%128 == 0 {
			fmt.Printf("input: %s [%d, %d] %v of %s\n", t.Name, t.Shape[0], t.Shape[1], t.DType, path)
			return reportEveryFormat(t.Tensor()) // quantized straight from the mapped file
		}
	}
	return fmt.Errorf("%s has no 2-D float tensor with rows a multiple of 128", path)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quantize:", err)
		os.Exit(1)
	}
}
