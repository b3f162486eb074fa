package checkpoint

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// This file reads the two formats torch.save wrote before the zip format:
// the legacy format (a sequence of pickles followed by raw storages) and,
// before that, a tar archive of three records.

// seqReader reads pickles and raw values laid out one after another.
type seqReader struct {
	data []byte
	pos  int
}

// pickle unpickles the next pickle.
func (r *seqReader) pickle(what string, persistentLoad func(any) (any, error)) (any, error) {
	n, err := scanPickle(r.data[r.pos:])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	obj, err := unpickle(r.data[r.pos:r.pos+n], persistentLoad)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	r.pos += n
	return obj, nil
}

// bytes returns the next n bytes.
func (r *seqReader) bytes(what string, n uint64) ([]byte, error) {
	if n > uint64(len(r.data)-r.pos) {
		return nil, fmt.Errorf("%s truncated: needs %d bytes, %d left", what, n, len(r.data)-r.pos)
	}
	b := r.data[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

// int64 reads a little-endian int64.
func (r *seqReader) int64(what string) (int64, error) {
	b, err := r.bytes(what, 8)
	if err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

// storageData reads a storage as torch writes it: an int64 element count,
// then the elements.
func (r *seqReader) storageData(s *torchStorage) error {
	numel, err := r.int64("storage " + s.key)
	if err != nil {
		return err
	}
	size := int64(dtypeSize(s.dtype))
	if numel < 0 || numel > int64(len(r.data))/size {
		return fmt.Errorf("storage %s truncated: %d %s elements, %d bytes left", s.key, numel, s.dtype, len(r.data)-r.pos)
	}
	s.data, err = r.bytes("storage "+s.key, uint64(numel*size))
	return err
}

// decodeLegacy decodes a legacy-format file: pickles of the magic number,
// the protocol version, the system info and the object, then a pickle of
// the list of storage keys, then each storage as an int64 element count
// followed by its raw bytes.
func (f *pthFile) decodeLegacy(data []byte) (any, error) {
	r := &seqReader{data: data}
	magic, err := r.pickle("magic number", nil)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != legacyMagic {
		return nil, errors.New("bad magic number: not a legacy torch.save file")
	}
	proto, err := r.pickle("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if p, ok := proto.(int); !ok || p != legacyProtocol {
		return nil, fmt.Errorf("unsupported legacy protocol version %s", brief(proto))
	}
	sysInfo, err := r.pickle("system info", nil)
	if err != nil {
		return nil, err
	}
	if d, ok := sysInfo.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le != true {
			return nil, errors.New("big-endian files are not supported")
		}
	}
	obj, err := r.pickle("object pickle", f.persistentLoad)
	if err != nil {
		return nil, err
	}
	keysObj, err := r.pickle("storage key list", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage key list is %s, not a list", describe(keysObj))
	}
	for _, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("storage key is %s, not a str", describe(k))
		}
		s := f.storages[key]
		if s == nil {
			return nil, fmt.Errorf("storage %s is listed but no tensor refers to it", key)
		}
		if err := r.storageData(s); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

// decodeTar decodes the tar format of torch < 0.1.10, which torchvision's
// oldest weight files use. The archive holds three records:
//
//   - "storages": a pickled count, then per storage a pickled (key,
//     location, storage_type), an int64 element count and the elements;
//     then a pickled list of views (view_key, root_key, offset, numel);
//   - "tensors": a pickled count, then per tensor a pickled (key,
//     storage_key, tensor_type), an int32 rank, 4 bytes of padding, the
//     int64 sizes, the int64 strides and the int64 storage offset;
//   - "pickle": the object, whose persistent ids are tensor keys as strings.
func (f *pthFile) decodeTar(data []byte) (any, error) {
	records, err := tarRecords(data)
	if err != nil {
		return nil, err
	}
	refs, err := decodeTarStorages(records[tarStorages])
	if err != nil {
		return nil, err
	}
	tensors, err := decodeTarTensors(records[tarTensors], refs)
	if err != nil {
		return nil, err
	}
	r := &seqReader{data: records[tarPickle]}
	return r.pickle("object pickle", tarPersistentLoad(tensors, refs))
}

// The names of the records of the tar format.
const (
	tarStorages = "storages"
	tarTensors  = "tensors"
	tarPickle   = "pickle"
)

// tarRecords returns the contents of the tar format's three records, by
// name. Other files in the archive are ignored; a missing record is an
// error.
func tarRecords(data []byte) (map[string][]byte, error) {
	records := map[string][]byte{tarStorages: nil, tarTensors: nil, tarPickle: nil}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar archive: %w", err)
		}
		if b, ok := records[hdr.Name]; !ok {
			continue
		} else if b != nil {
			return nil, fmt.Errorf("tar archive with two %q records", hdr.Name)
		}
		if hdr.Size < 0 || hdr.Size > int64(len(data)) {
			return nil, fmt.Errorf("tar record %s: bad size %d", hdr.Name, hdr.Size)
		}
		b, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil || int64(len(b)) != hdr.Size {
			return nil, fmt.Errorf("tar record %s truncated", hdr.Name)
		}
		records[hdr.Name] = b
	}
	for _, name := range []string{tarStorages, tarTensors, tarPickle} {
		if records[name] == nil {
			return nil, fmt.Errorf("tar archive without a %q record: not a torch.save file", name)
		}
	}
	return records, nil
}

// count reads the pickled number of entries that starts a record of the
// tar format; what ("storage", "tensor") names the entries in errors. A
// count larger than the record's size is an error.
func (r *seqReader) count(what string) (int, error) {
	count, err := r.pickle(what+" count", nil)
	if err != nil {
		return 0, err
	}
	n, ok := toInt(count)
	if !ok || n < 0 || n > len(r.data) {
		return 0, fmt.Errorf("bad %s count %s", what, brief(count))
	}
	return n, nil
}

// decodeTarStorages decodes the "storages" record: the storages, then the
// views of them. It returns both by key, a storage as a view of all of
// itself.
func decodeTarStorages(data []byte) (map[string]*storageRef, error) {
	refs := make(map[string]*storageRef)
	r := &seqReader{data: data}
	n, err := r.count("storage")
	if err != nil {
		return nil, err
	}
	for range n {
		s, err := r.tarStorage()
		if err != nil {
			return nil, err
		}
		refs[s.key] = &storageRef{root: s, numel: s.numel}
	}
	if err := r.tarViews(refs); err != nil {
		return nil, err
	}
	return refs, nil
}

// tarStorage reads one storage of the "storages" record: its pickled
// (key, location, storage_type) header and its elements.
func (r *seqReader) tarStorage() (*torchStorage, error) {
	hdr, err := r.pickle("storage header", nil)
	if err != nil {
		return nil, err
	}
	t, ok := hdr.(*types.Tuple)
	if !ok || len(*t) != 3 {
		return nil, fmt.Errorf("storage header is %s, not a (key, location, type) tuple", describe(hdr))
	}
	key := brief((*t)[0])
	class, ok := (*t)[2].(*storageClass)
	if !ok {
		return nil, fmt.Errorf("storage %s: type is %s, not a torch storage class", key, describe((*t)[2]))
	}
	if class.dtype == "" {
		return nil, fmt.Errorf("unknown storage type %s", class.name)
	}
	s := &torchStorage{key: key, dtype: class.dtype}
	if err := r.storageData(s); err != nil {
		return nil, err
	}
	s.numel = len(s.data) / dtypeSize(s.dtype)
	return s, nil
}

// tarViews reads the pickled list of storage views that ends the
// "storages" record and adds each view to refs under its key. A view must
// lie within a storage or view already in refs.
func (r *seqReader) tarViews(refs map[string]*storageRef) error {
	viewsObj, err := r.pickle("storage views", nil)
	if err != nil {
		return err
	}
	views, ok := viewsObj.(*types.List)
	if !ok {
		return fmt.Errorf("storage views are %s, not a list", describe(viewsObj))
	}
	for _, v := range *views {
		t, ok := v.(*types.Tuple)
		if !ok || len(*t) != 4 {
			return fmt.Errorf("storage view is %s, not a (key, root, offset, numel) tuple", describe(v))
		}
		root := refs[brief((*t)[1])]
		offset, ok1 := toInt((*t)[2])
		numel, ok2 := toInt((*t)[3])
		if root == nil || !ok1 || !ok2 || offset < 0 || numel < 0 || offset > root.numel || numel > root.numel-offset {
			return fmt.Errorf("bad storage view %v", describe(v))
		}
		refs[brief((*t)[0])] = &storageRef{root: root.root, offset: offset, numel: numel}
	}
	return nil
}

// decodeTarTensors decodes the "tensors" record into tensors by key, each
// a view of a storage in refs.
func decodeTarTensors(data []byte, refs map[string]*storageRef) (map[string]*rawTensor, error) {
	tensors := make(map[string]*rawTensor)
	r := &seqReader{data: data}
	n, err := r.count("tensor")
	if err != nil {
		return nil, err
	}
	for range n {
		key, rt, err := r.tarTensor(refs)
		if err != nil {
			return nil, err
		}
		tensors[key] = rt
	}
	return tensors, nil
}

// tarTensor reads one tensor of the "tensors" record: its pickled (key,
// storage_key, tensor_type) header, its int32 rank and 4 bytes of padding,
// then its int64 sizes, strides and storage offset. It returns the key and
// the tensor.
func (r *seqReader) tarTensor(refs map[string]*storageRef) (string, *rawTensor, error) {
	hdr, err := r.pickle("tensor header", nil)
	if err != nil {
		return "", nil, err
	}
	t, ok := hdr.(*types.Tuple)
	if !ok || len(*t) != 3 {
		return "", nil, fmt.Errorf("tensor header is %s, not a (key, storage, type) tuple", describe(hdr))
	}
	key := brief((*t)[0])
	ref := refs[brief((*t)[1])]
	if ref == nil {
		return "", nil, fmt.Errorf("tensor %s: unknown storage %s", key, brief((*t)[1]))
	}
	b, err := r.bytes("tensor "+key, 8)
	if err != nil {
		return "", nil, err
	}
	ndim := int(int32(binary.LittleEndian.Uint32(b)))
	if ndim < 0 || ndim > maxRank {
		return "", nil, fmt.Errorf("tensor %s: bad rank %d", key, ndim)
	}
	rt := &rawTensor{storage: ref, size: make([]int, ndim), stride: make([]int, ndim)}
	for _, dst := range [][]int{rt.size, rt.stride} {
		for i := range dst {
			v, err := r.int64("tensor " + key)
			if err != nil {
				return "", nil, err
			}
			if v < 0 || v > 1<<40 {
				return "", nil, fmt.Errorf("tensor %s: bad size or stride %d", key, v)
			}
			dst[i] = int(v)
		}
	}
	offset, err := r.int64("tensor " + key)
	if err != nil {
		return "", nil, err
	}
	if offset < 0 || offset > 1<<40 {
		return "", nil, fmt.Errorf("tensor %s: bad storage offset %d", key, offset)
	}
	rt.offset = int(offset)
	return key, rt, nil
}

// tarPersistentLoad resolves the persistent ids of the "pickle" record: a
// string names a tensor (or a storage) by key; a tuple is a pickled
// module's class and source, kept opaque.
func tarPersistentLoad(tensors map[string]*rawTensor, refs map[string]*storageRef) func(any) (any, error) {
	return func(pid any) (any, error) {
		switch id := pid.(type) {
		case string:
			if t := tensors[id]; t != nil {
				return t, nil
			}
			if s := refs[id]; s != nil {
				return s, nil
			}
			return nil, fmt.Errorf("persistent id %s names no tensor or storage", id)
		case *types.Tuple:
			// A pickled module's class and source.
			return &opaqueClass{module: "module", name: "source"}, nil
		}
		return nil, fmt.Errorf("persistent id is %s", describe(pid))
	}
}
