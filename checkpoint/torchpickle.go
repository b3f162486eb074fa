package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// This file resolves the Python classes and functions that torch.save
// pickles refer to, for gopickle's unpickler.

// storageDTypes maps torch's typed storage classes to element types.
var storageDTypes = map[string]string{
	"FloatStorage":    F32,
	"DoubleStorage":   F64,
	"HalfStorage":     F16,
	"BFloat16Storage": BF16,
	"LongStorage":     I64,
	"IntStorage":      I32,
	"ShortStorage":    I16,
	"CharStorage":     I8,
	"ByteStorage":     U8,
	"BoolStorage":     Bool,
}

// storageClass is a torch.<Type>Storage class named in a persistent id.
type storageClass struct {
	name  string // e.g. "torch.FloatStorage"
	dtype string // "" when the storage type is not supported
}

// torchStorage is one storage of the file: a flat array of elements that
// tensors view.
type torchStorage struct {
	key   string
	dtype string
	numel int    // as declared in the pickle
	data  []byte // raw little-endian bytes, once loaded
}

// storageRef is what a persistent id resolves to: a storage, or (legacy
// files only) a view of part of one.
type storageRef struct {
	root   *torchStorage
	offset int // in elements
	numel  int
}

// rawTensor is a tensor as pickled: a strided view of a storage.
type rawTensor struct {
	storage *storageRef
	offset  int
	size    []int
	stride  []int
}

// rebuildTensor implements torch._utils._rebuild_tensor (version 1, before
// torch 0.4: storage, offset, size, stride) and _rebuild_tensor_v2 (which
// adds requires_grad, backward_hooks and, optionally, metadata).
type rebuildTensor struct{ v2 bool }

func (r rebuildTensor) Call(args ...any) (any, error) {
	name := "_rebuild_tensor"
	if r.v2 {
		name = "_rebuild_tensor_v2"
	}
	if (!r.v2 && len(args) != 4) || (r.v2 && len(args) != 6 && len(args) != 7) {
		return nil, fmt.Errorf("torch._utils.%s called with %d arguments", name, len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("torch._utils.%s: first argument is %s, not a storage", name, describe(args[0]))
	}
	offset, ok := toInt(args[1])
	if !ok {
		return nil, fmt.Errorf("torch._utils.%s: storage offset is %s, not an int", name, describe(args[1]))
	}
	size, err := toInts(args[2])
	if err != nil {
		return nil, fmt.Errorf("torch._utils.%s: size: %w", name, err)
	}
	stride, err := toInts(args[3])
	if err != nil {
		return nil, fmt.Errorf("torch._utils.%s: stride: %w", name, err)
	}
	return &rawTensor{storage: st, offset: offset, size: size, stride: stride}, nil
}

// rebuildParameter implements torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks) and _rebuild_parameter_with_state (one
// more argument): a Parameter is its data tensor here.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("torch._utils._rebuild_parameter called without arguments")
	}
	return args[0], nil
}

// torchSize implements torch.Size(tuple), which old files use for sizes.
type torchSize struct{}

func (torchSize) Call(args ...any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("torch.Size called with %d arguments", len(args))
	}
	return args[0], nil
}

// opaqueClass stands for any other class or function a pickle names. It can
// be called and instantiated, and its objects accept any state, so that a
// checkpoint holding, say, numpy scalars or argparse.Namespace next to its
// state dict still loads; those values are just not usable.
type opaqueClass struct{ module, name string }

// opaqueObject is a value built by an opaqueClass.
type opaqueObject struct{ class *opaqueClass }

// Call and PyNew build an opaque object.
func (c *opaqueClass) Call(...any) (any, error)  { return &opaqueObject{c}, nil }
func (c *opaqueClass) PyNew(...any) (any, error) { return &opaqueObject{c}, nil }

// PySetState, PyDictSet and PySetAttr accept and drop any state.
func (*opaqueObject) PySetState(any) error        { return nil }
func (*opaqueObject) PyDictSet(any, any) error    { return nil }
func (*opaqueObject) PySetAttr(string, any) error { return nil }

// findClass resolves a pickle's GLOBAL references.
func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor":
		return rebuildTensor{v2: false}, nil
	case "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{v2: true}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	case "torch.Size":
		return torchSize{}, nil
	}
	if module == "torch" && len(name) > len("Storage") && name[len(name)-len("Storage"):] == "Storage" {
		return &storageClass{name: module + "." + name, dtype: storageDTypes[name]}, nil
	}
	return &opaqueClass{module: module, name: name}, nil
}

// unpickle runs gopickle's unpickler over one complete pickle (data must end
// with its STOP opcode; see scanPickle). persistentLoad may be nil. A panic
// inside the unpickler on malformed input becomes an error.
func unpickle(data []byte, persistentLoad func(any) (any, error)) (obj any, err error) {
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad
	obj, err = u.Load()
	if err != nil {
		// A number gopickle fails to parse (the line of an INT, LONG,
		// FLOAT, GET or PUT) is quoted whole by strconv's error, escaping
		// each byte that is not printable in four: name its length
		// instead, so that the message of a hostile pickle stays small.
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("unpickling: a number of %d bytes that %s cannot parse: %w", len(ne.Num), ne.Func, ne.Err)
		}
		return nil, fmt.Errorf("unpickling: %w", err)
	}
	return obj, nil
}

// toInt returns x as an int if it is a Python int that fits.
func toInt(x any) (int, bool) {
	switch v := x.(type) {
	case int:
		return v, true
	case *big.Int:
		if v.IsInt64() && int64(int(v.Int64())) == v.Int64() {
			return int(v.Int64()), true
		}
	}
	return 0, false
}

// toInts converts a tuple or list of Python ints.
func toInts(x any) ([]int, error) {
	var items []any
	switch v := x.(type) {
	case *types.Tuple:
		items = *v
	case *types.List:
		items = *v
	default:
		return nil, fmt.Errorf("%s is not a tuple of ints", describe(x))
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, ok := toInt(it)
		if !ok {
			return nil, fmt.Errorf("element %d is %s, not an int", i, describe(it))
		}
		out[i] = n
	}
	return out, nil
}

// brief formats an untrusted pickled value for a message or a key: a str,
// int or float as its value, anything else as describe says it. Printing a value with %v instead costs what the value
// holds: a pickle of 4 KB can nest 4,000 tuples, whose String is
// quadratic (34 MB).
func brief(x any) string {
	switch v := x.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case *big.Int:
		if v.BitLen() > 64 {
			return "an int of " + strconv.Itoa(v.BitLen()) + " bits"
		}
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return describe(x)
}

// describe names the Python type of an unpickled value, for error messages.
func describe(x any) string {
	switch v := x.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a str"
	case []byte:
		return "bytes"
	case *types.Tuple:
		return "a tuple"
	case *types.List:
		return "a list"
	case *types.Dict:
		return "a dict"
	case *types.OrderedDict:
		return "an OrderedDict"
	case *rawTensor:
		return "a tensor"
	case *storageRef:
		return "a storage"
	case *opaqueObject:
		return "an object of type " + v.class.module + "." + v.class.name
	case *opaqueClass:
		return "the class " + v.module + "." + v.name
	}
	return fmt.Sprintf("a %T", x)
}
