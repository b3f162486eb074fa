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
		return nil, fmt.Errorf("unsupported legacy protocol version %v", proto)
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
	records := map[string][]byte{"storages": nil, "tensors": nil, "pickle": nil}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar archive: %w", err)
		}
		if _, ok := records[hdr.Name]; !ok {
			continue
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
	for name, b := range records {
		if b == nil {
			return nil, fmt.Errorf("tar archive without a %q record: not a torch.save file", name)
		}
	}

	// Storages, by key, and views of them.
	refs := make(map[string]*storageRef)
	r := &seqReader{data: records["storages"]}
	count, err := r.pickle("storage count", nil)
	if err != nil {
		return nil, err
	}
	n, ok := toInt(count)
	if !ok || n < 0 || n > len(r.data) {
		return nil, fmt.Errorf("bad storage count %v", count)
	}
	for range n {
		hdr, err := r.pickle("storage header", nil)
		if err != nil {
			return nil, err
		}
		t, ok := hdr.(*types.Tuple)
		if !ok || len(*t) != 3 {
			return nil, fmt.Errorf("storage header is %s, not a (key, location, type) tuple", describe(hdr))
		}
		key := fmt.Sprint((*t)[0])
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
		refs[key] = &storageRef{root: s, numel: s.numel}
	}
	viewsObj, err := r.pickle("storage views", nil)
	if err != nil {
		return nil, err
	}
	views, ok := viewsObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage views are %s, not a list", describe(viewsObj))
	}
	for _, v := range *views {
		t, ok := v.(*types.Tuple)
		if !ok || len(*t) != 4 {
			return nil, fmt.Errorf("storage view is %s, not a (key, root, offset, numel) tuple", describe(v))
		}
		root := refs[fmt.Sprint((*t)[1])]
		offset, ok1 := toInt((*t)[2])
		numel, ok2 := toInt((*t)[3])
		if root == nil || !ok1 || !ok2 || offset < 0 || numel < 0 || offset > root.numel || numel > root.numel-offset {
			return nil, fmt.Errorf("bad storage view %v", describe(v))
		}
		refs[fmt.Sprint((*t)[0])] = &storageRef{root: root.root, offset: offset, numel: numel}
	}

	// Tensors, by key.
	tensors := make(map[string]*rawTensor)
	r = &seqReader{data: records["tensors"]}
	count, err = r.pickle("tensor count", nil)
	if err != nil {
		return nil, err
	}
	if n, ok = toInt(count); !ok || n < 0 || n > len(r.data) {
		return nil, fmt.Errorf("bad tensor count %v", count)
	}
	for range n {
		hdr, err := r.pickle("tensor header", nil)
		if err != nil {
			return nil, err
		}
		t, ok := hdr.(*types.Tuple)
		if !ok || len(*t) != 3 {
			return nil, fmt.Errorf("tensor header is %s, not a (key, storage, type) tuple", describe(hdr))
		}
		key := fmt.Sprint((*t)[0])
		ref := refs[fmt.Sprint((*t)[1])]
		if ref == nil {
			return nil, fmt.Errorf("tensor %s: unknown storage %v", key, (*t)[1])
		}
		b, err := r.bytes("tensor "+key, 8)
		if err != nil {
			return nil, err
		}
		ndim := int(int32(binary.LittleEndian.Uint32(b)))
		if ndim < 0 || ndim > 64 {
			return nil, fmt.Errorf("tensor %s: bad rank %d", key, ndim)
		}
		rt := &rawTensor{storage: ref, size: make([]int, ndim), stride: make([]int, ndim)}
		for _, dst := range [][]int{rt.size, rt.stride} {
			for i := range dst {
				v, err := r.int64("tensor " + key)
				if err != nil {
					return nil, err
				}
				if v < 0 || v > 1<<40 {
					return nil, fmt.Errorf("tensor %s: bad size or stride %d", key, v)
				}
				dst[i] = int(v)
			}
		}
		offset, err := r.int64("tensor " + key)
		if err != nil {
			return nil, err
		}
		if offset < 0 || offset > 1<<40 {
			return nil, fmt.Errorf("tensor %s: bad storage offset %d", key, offset)
		}
		rt.offset = int(offset)
		tensors[key] = rt
	}

	// The object, whose persistent ids name tensors.
	r = &seqReader{data: records["pickle"]}
	return r.pickle("object pickle", func(pid any) (any, error) {
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
	})
}
