package capi

/*
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

// ProgressFunc is told of a whole-model call's progress (grey_model_progress_callback): the input
// tensor bytes done, their total and the tensor just done ("" before the first). true stops the call.
type ProgressFunc func(done, total uint64, tensor string) bool

// greyGoProgress is the grey_model_progress_callback that grey_go_*_options_set_progress install: it
// calls the ProgressFunc behind the cgo.Handle in `user`. A panic in it stops the call rather than
// unwinding through C.
//
//export greyGoProgress
func greyGoProgress(done, total C.uint64_t, tensor *C.char, user C.uintptr_t) (stop C.uint32_t) {
	stop = 1
	defer func() { _ = recover() }()
	if !cgo.Handle(user).Value().(ProgressFunc)(uint64(done), uint64(total), C.GoString(tensor)) {
		stop = 0
	}
	return stop
}
