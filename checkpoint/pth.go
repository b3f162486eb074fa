package checkpoint

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// NestedStateDictKeys are the keys under which training checkpoints commonly
// keep the model's state dict ({"epoch": 3, "state_dict": {...}, ...}).
// ReadPTH looks under them, in this order, when the file's top-level dict is
// not itself a state dict.
var NestedStateDictKeys = []string{"state_dict", "model", "model_state_dict"}

// legacyMagic is the number that starts a legacy torch.save file.
const legacyMagic = "1950a86a20f9469cfc6c"

// legacyProtocol is the protocol version that follows the magic number.
const legacyProtocol = 1001

// maxExpandedNumel bounds the elements of a tensor that has more elements
// than its storage (a stride-0, expanded view), so that a corrupt size
// cannot make the reader allocate without bound: 4M elements (16 MiB of
// float32) is twice the largest layer of torchvision's ResNets (the fc of
// resnet152, 2M), and state dicts hold no expanded tensors in practice.
const maxExpandedNumel = 1 << 22

// maxDecodeRatio bounds the memory a .pth file's tensors may take once
// decoded, as a multiple of the file's size (plus maxDecodeSlack), so that
// views that repeat their storages many times over cannot turn a small
// file into gigabytes. A float32 tensor takes as many bytes as its data in
// the file, a uint8 or bool tensor 12 times as many (float32 and int64
// copies, see Tensor), and weights tied between two names count twice:
// 32 leaves room for all of these at once.
const maxDecodeRatio = 32

// maxDecodeSlack is the memory decoded tensors may take beyond
// maxDecodeRatio times the file's size: room for expanded views of tiny
// storages (see maxExpandedNumel) in a small file.
const maxDecodeSlack = 16 << 20

// maxInflateRatio bounds how many times its compressed size a compressed
// record of a zip-format file may inflate to (plus inflateSlack).
// torch.save stores its records uncompressed; deflate shrinks float32
// weights by about 10%, and even a pruned tensor with 95% zeros only
// about 20 times, while a zip bomb inflates over 1000 times.
const maxInflateRatio = 32

// inflateSlack is what a compressed record may inflate to beyond
// maxInflateRatio times its compressed size: small records, such as a
// tensor of a few zeros, compress better than large ones.
const inflateSlack = 4096

// ReadPTH reads the state dict saved in a PyTorch .pth file by torch.save,
// in any of its formats: zip (the default since torch 1.6), legacy (torch
// < 1.6, or _use_new_zipfile_serialization=False) or the tar format of
// torch < 0.1.10, in which torchvision's oldest files, such as
// resnet18-5c106cde.pth, were saved (see pytorch/pytorch#61817).
//
// If the file's top-level dict holds tensors only, that dict is the state
// dict. Otherwise ReadPTH uses the dict of tensors under the first of
// NestedStateDictKeys present; use ReadPTHEntry to name the key yourself.
func ReadPTH(path string) (*StateDict, error) {
	return ReadPTHEntry(path, "")
}

// ReadPTHEntry reads the state dict stored under key in the dict saved in a
// .pth file (for example "model_ema"). An empty key means what ReadPTH does.
func ReadPTHEntry(path, key string) (*StateDict, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return decodePTH(path, data, key)
}

// pthFile is a .pth file being decoded.
type pthFile struct {
	name     string // the file's path, for error messages
	storages map[string]*torchStorage
	// load fills in a storage's data (zip format); nil when all storages
	// are loaded up front (legacy format).
	load func(s *torchStorage) error
	// decodeBudget is what the tensors may still allocate once decoded,
	// in bytes (see maxDecodeRatio).
	decodeBudget int
}

// decodePTH decodes the contents of a .pth file; name is used in errors.
// It never panics: a panic on input it failed to anticipate becomes an
// error.
func decodePTH(name string, data []byte, key string) (sd *StateDict, err error) {
	defer func() {
		if r := recover(); r != nil {
			sd, err = nil, fmt.Errorf("checkpoint: %s: malformed file: %v", name, r)
		}
	}()
	f := &pthFile{name: name, storages: make(map[string]*torchStorage),
		decodeBudget: maxDecodeRatio*min(len(data), (math.MaxInt-maxDecodeSlack)/maxDecodeRatio) + maxDecodeSlack}
	var obj any
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		obj, err = f.decodeZip(data)
	case len(data) > 0 && data[0] == 0x80: // a pickle's PROTO opcode
		obj, err = f.decodeLegacy(data)
	case len(data) > 262 && string(data[257:262]) == "ustar":
		obj, err = f.decodeTar(data)
	default:
		err = errors.New("not a PyTorch file (neither a zip archive nor a legacy torch.save pickle)")
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", name, err)
	}
	return f.stateDict(obj, key)
}

// decodeZip unpickles data.pkl of a zip-format file. Storages are read from
// <top>/data/<key> when a tensor needs them.
func (f *pthFile) decodeZip(data []byte) (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("reading zip archive: %w", err)
	}
	if err := checkZipLayout(zr, len(data)); err != nil {
		return nil, err
	}
	records := make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, r := range zr.File {
		records[r.Name] = r
		// The top folder is the saved file's stem, often "archive"; take the
		// shallowest data.pkl.
		if path.Base(r.Name) == "data.pkl" && (pkl == nil || strings.Count(r.Name, "/") < strings.Count(pkl.Name, "/")) {
			pkl = r
		}
	}
	if pkl == nil {
		return nil, errors.New("zip archive without a data.pkl record: not a torch.save file")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if records[prefix+"constants.pkl"] != nil || records[prefix+"code/"] != nil {
		return nil, errors.New("a TorchScript archive, not a state dict: save the model's state_dict() instead")
	}
	if r := records[prefix+"byteorder"]; r != nil {
		order, err := readZipRecord(data, r, 16)
		if err != nil {
			return nil, err
		}
		if string(order) != "little" {
			return nil, fmt.Errorf("byte order %q is not supported", order)
		}
	}
	if pkl.UncompressedSize64 > maxPickleBytes {
		return nil, fmt.Errorf("zip record %s: %d bytes, more than the %d MiB any state dict's pickle needs", pkl.Name, pkl.UncompressedSize64, maxPickleBytes>>20)
	}
	pickled, err := readZipRecord(data, pkl, pkl.UncompressedSize64)
	if err != nil {
		return nil, err
	}
	f.load = func(s *torchStorage) error {
		r := records[prefix+"data/"+s.key]
		if r == nil {
			return fmt.Errorf("storage %s: record %sdata/%s missing", s.key, prefix, s.key)
		}
		// What the pickle says the storage holds bounds what is read,
		// whatever the record's header says.
		esize := uint64(dtypeSize(s.dtype))
		if uint64(s.numel) > r.UncompressedSize64/esize {
			return fmt.Errorf("storage %s truncated: %d bytes for %d %s elements", s.key, r.UncompressedSize64, s.numel, s.dtype)
		}
		need := uint64(s.numel) * esize
		b, err := readZipRecord(data, r, need)
		if err != nil {
			return err
		}
		s.data = b
		return nil
	}
	n, err := scanPickle(pickled)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	obj, err := unpickle(pickled[:n], f.persistentLoad)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	return obj, nil
}

// checkZipLayout checks that the records of a zip archive of size bytes lie
// within it without overlapping (each byte of compressed data belongs to
// one record: a zip bomb that inflates the same data under many names is
// refused) and that no compressed record claims to inflate to more than
// maxInflateRatio times its size.
func checkZipLayout(zr *zip.Reader, size int) error {
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(zr.File))
	for _, r := range zr.File {
		off, err := r.DataOffset()
		if err != nil {
			return fmt.Errorf("zip record %s: %w", r.Name, err)
		}
		if off < 0 || uint64(off) > uint64(size) || r.CompressedSize64 > uint64(size)-uint64(off) {
			return fmt.Errorf("zip record %s truncated: %d bytes at offset %d in a %d-byte file", r.Name, r.CompressedSize64, off, size)
		}
		if r.Method == zip.Store && r.UncompressedSize64 != r.CompressedSize64 {
			return fmt.Errorf("zip record %s stored uncompressed with %d bytes, its header says %d: a corrupt file", r.Name, r.CompressedSize64, r.UncompressedSize64)
		}
		if r.Method != zip.Store && r.UncompressedSize64/maxInflateRatio > r.CompressedSize64+inflateSlack/maxInflateRatio {
			return fmt.Errorf("zip record %s inflates %d bytes to %d, more than %d times: a zip bomb or a corrupt file (torch.save stores records uncompressed)",
				r.Name, r.CompressedSize64, r.UncompressedSize64, maxInflateRatio)
		}
		spans = append(spans, span{r.Name, uint64(off), uint64(off) + r.CompressedSize64})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	var last *span // the non-empty span that ends last so far
	for i := range spans {
		cur := &spans[i]
		if cur.begin == cur.end {
			continue
		}
		if last != nil && cur.begin < last.end {
			return fmt.Errorf("zip records %s and %s overlap: a zip bomb or a corrupt file", last.name, cur.name)
		}
		last = cur
	}
	return nil
}

// readZipRecord returns the first limit bytes of a zip record, or all of it
// if it is shorter. Records that are stored uncompressed (as torch writes
// them) are sliced out of data without copying, after checking their
// CRC-32. Compressed records are inflated into a buffer of at most limit
// bytes, the rest of them read through to check their size and CRC-32;
// checkZipLayout has bounded how far they inflate.
func readZipRecord(data []byte, r *zip.File, limit uint64) ([]byte, error) {
	if r.Method == zip.Store {
		off, err := r.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("zip record %s: %w", r.Name, err)
		}
		size := r.UncompressedSize64
		if off < 0 || uint64(off) > uint64(len(data)) || size > uint64(len(data))-uint64(off) {
			return nil, fmt.Errorf("zip record %s truncated: %d bytes at offset %d in a %d-byte file", r.Name, size, off, len(data))
		}
		b := data[off : uint64(off)+size]
		if crc32.ChecksumIEEE(b) != r.CRC32 {
			return nil, fmt.Errorf("zip record %s: checksum mismatch (corrupt file)", r.Name)
		}
		if size > limit {
			b = b[:limit]
		}
		return b, nil
	}
	rc, err := r.Open()
	if err != nil {
		return nil, fmt.Errorf("zip record %s: %w", r.Name, err)
	}
	defer rc.Close()
	// The header's size is checked against the data as it inflates (the
	// zip reader fails on a mismatch), so only a buffer of the smaller of
	// the two is needed up front.
	b := make([]byte, min(limit, r.UncompressedSize64))
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("zip record %s: %w", r.Name, err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, fmt.Errorf("zip record %s: %w", r.Name, err)
	}
	return b, nil
}

// persistentLoad resolves a persistent id of the form ('storage',
// storage_type, key, location, numel[, view_metadata]) to a storage
// reference, registering the storage on first sight.
func (f *pthFile) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || len(*t) == 0 {
		return nil, fmt.Errorf("persistent id is %s, not a tuple", describe(pid))
	}
	id := *t
	switch kind, _ := id[0].(string); kind {
	case "storage":
	case "module":
		// Legacy files of whole pickled modules record their source code
		// here; it is of no use to a state dict.
		return &opaqueClass{module: "module", name: "source"}, nil
	default:
		return nil, fmt.Errorf("unknown persistent id type %s", brief(id[0]))
	}
	if len(id) < 5 {
		return nil, fmt.Errorf("storage persistent id with %d fields", len(id))
	}
	class, ok := id[1].(*storageClass)
	if !ok {
		return nil, fmt.Errorf("storage type is %s, not a torch storage class", describe(id[1]))
	}
	if class.dtype == "" {
		return nil, fmt.Errorf("unknown storage type %s", class.name)
	}
	key, ok := id[2].(string)
	if !ok {
		return nil, fmt.Errorf("storage key is %s, not a str", describe(id[2]))
	}
	numel, ok := toInt(id[4])
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %s: bad element count %s", key, brief(id[4]))
	}
	s := f.storages[key]
	if s == nil {
		s = &torchStorage{key: key, dtype: class.dtype, numel: numel}
		f.storages[key] = s
	}
	ref := &storageRef{root: s, numel: s.numel}
	if len(id) > 5 && id[5] != nil {
		// Legacy view metadata: (view_key, offset, view_size), in elements.
		vm, err := toInts(viewMetadataInts(id[5]))
		if err != nil || len(vm) != 2 {
			return nil, fmt.Errorf("storage %s: bad view metadata", key)
		}
		ref.offset, ref.numel = vm[0], vm[1]
		if ref.offset < 0 || ref.numel < 0 || ref.offset > s.numel || ref.numel > s.numel-ref.offset {
			return nil, fmt.Errorf("storage %s: view [%d, +%d) outside its %d elements", key, ref.offset, ref.numel, s.numel)
		}
	}
	return ref, nil
}

// viewMetadataInts drops the view key from legacy view metadata, leaving
// (offset, size).
func viewMetadataInts(x any) any {
	if t, ok := x.(*types.Tuple); ok && len(*t) == 3 {
		rest := types.Tuple((*t)[1:])
		return &rest
	}
	return nil
}

// stateDict picks the state dict out of the unpickled object and converts
// its tensors.
func (f *pthFile) stateDict(obj any, key string) (*StateDict, error) {
	entries, ok := dictItems(obj)
	if !ok {
		return nil, fmt.Errorf("checkpoint: %s: not a state dict: the file holds %s", f.name, describe(obj))
	}
	if key != "" {
		v, found := lookup(entries, key)
		if !found {
			return nil, fmt.Errorf("checkpoint: %s: no key %q in the saved dict (keys: %s)", f.name, key, keyList(entries))
		}
		if entries, ok = dictItems(v); !ok {
			return nil, fmt.Errorf("checkpoint: %s: %q holds %s, not a state dict", f.name, key, describe(v))
		}
	} else if !allTensors(entries) {
		picked := false
		for _, k := range NestedStateDictKeys {
			v, found := lookup(entries, k)
			if inner, ok := dictItems(v); found && ok && allTensors(inner) {
				entries, picked = inner, true
				break
			}
		}
		if !picked {
			return nil, fmt.Errorf("checkpoint: %s: not a state dict: the saved dict holds non-tensor values and none of %v holds a dict of tensors (keys: %s)",
				f.name, NestedStateDictKeys, keyList(entries))
		}
	}
	sd := NewStateDict()
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok {
			return nil, fmt.Errorf("checkpoint: %s: state dict key is %s, not a str", f.name, describe(e.key))
		}
		rt, ok := e.value.(*rawTensor)
		if !ok {
			return nil, fmt.Errorf("checkpoint: %s: %s is %s, not a tensor", f.name, name, describe(e.value))
		}
		t, err := f.tensor(name, rt)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %s: %s: %w", f.name, name, err)
		}
		sd.Add(t)
	}
	return sd, nil
}

// tensor gathers a pickled tensor's elements from its storage.
func (f *pthFile) tensor(name string, rt *rawTensor) (*Tensor, error) {
	s := rt.storage.root
	if s.data == nil && f.load != nil {
		if err := f.load(s); err != nil {
			return nil, err
		}
	}
	if s.data == nil {
		return nil, fmt.Errorf("storage %s missing from the file", s.key)
	}
	if len(rt.size) > maxRank {
		return nil, fmt.Errorf("rank %d too large", len(rt.size))
	}
	if len(rt.size) != len(rt.stride) {
		return nil, fmt.Errorf("size %v and stride %v differ in rank", rt.size, rt.stride)
	}
	esize := dtypeSize(s.dtype)
	// Elements of the storage (or legacy storage view) the tensor may use.
	avail := min(rt.storage.numel, len(s.data)/esize-rt.storage.offset)
	numel, last := 1, rt.offset
	for i, n := range rt.size {
		if n < 0 || rt.stride[i] < 0 {
			return nil, fmt.Errorf("negative size or stride: size %v, stride %v", rt.size, rt.stride)
		}
		if n > 0 && numel > (1<<40)/n {
			return nil, fmt.Errorf("size %v too large", rt.size)
		}
		numel *= n
		if n > 0 && rt.stride[i] > (1<<40)/n {
			return nil, fmt.Errorf("stride %v too large", rt.stride)
		}
		last += (n - 1) * rt.stride[i]
	}
	t := &Tensor{Name: name, Shape: rt.size, DType: s.dtype}
	if numel == 0 {
		t.F32 = []float32{}
		if isInteger(s.dtype) {
			t.I64 = []int64{}
		}
		return t, nil
	}
	if rt.offset < 0 || last >= avail {
		return nil, fmt.Errorf("view (offset %d, size %v, stride %v) outside its storage of %d elements", rt.offset, rt.size, rt.stride, avail)
	}
	if numel > avail && numel > maxExpandedNumel {
		return nil, fmt.Errorf("size %v too large for its storage of %d elements", rt.size, avail)
	}
	// What decoding allocates: a gathered copy of a strided view, float32
	// values, and int64 ones for integer types.
	contiguous := isContiguous(rt.size, rt.stride)
	cost := 4
	if !contiguous {
		cost += esize
	}
	if isInteger(s.dtype) {
		cost += 8
	}
	if numel > f.decodeBudget/cost {
		return nil, fmt.Errorf("the tensors decode to more than %d times the file's size (tensors that view the same data over and over: a corrupt or hostile file)", maxDecodeRatio)
	}
	f.decodeBudget -= numel * cost
	base := rt.storage.offset + rt.offset
	var raw []byte
	if contiguous {
		raw = s.data[base*esize : (base+numel)*esize]
	} else {
		raw = gather(s.data, esize, base, rt.size, rt.stride, numel)
	}
	var err error
	t.F32, t.I64, err = decodeRaw(s.dtype, raw)
	return t, err
}

// isContiguous reports whether stride is the row-major stride of size
// (dimensions of size 1 may have any stride).
func isContiguous(size, stride []int) bool {
	want := 1
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// gather copies the elements of a strided view into row-major order.
func gather(data []byte, esize, base int, size, stride []int, numel int) []byte {
	out := make([]byte, 0, numel*esize)
	idx := make([]int, len(size))
	pos := base
	for range numel {
		out = append(out, data[pos*esize:(pos+1)*esize]...)
		// Advance the row-major index like an odometer.
		for d := len(size) - 1; d >= 0; d-- {
			idx[d]++
			pos += stride[d]
			if idx[d] < size[d] {
				break
			}
			pos -= idx[d] * stride[d]
			idx[d] = 0
		}
	}
	return out
}

// item is one key/value pair of an unpickled dict.
type item struct{ key, value any }

// dictItems returns the items of an unpickled dict or OrderedDict, in order.
func dictItems(x any) ([]item, bool) {
	switch d := x.(type) {
	case *types.OrderedDict:
		items := make([]item, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			items = append(items, item{entry.Key, entry.Value})
		}
		return items, true
	case *types.Dict:
		items := make([]item, 0, len(*d))
		for _, e := range *d {
			items = append(items, item{e.Key, e.Value})
		}
		return items, true
	}
	return nil, false
}

// lookup returns the value under a string key.
func lookup(items []item, key string) (any, bool) {
	for _, it := range items {
		if k, ok := it.key.(string); ok && k == key {
			return it.value, true
		}
	}
	return nil, false
}

// allTensors reports whether every value is a tensor.
func allTensors(items []item) bool {
	for _, it := range items {
		if _, ok := it.value.(*rawTensor); !ok {
			return false
		}
	}
	return true
}

// keyList lists the first few keys of a dict for an error message.
func keyList(items []item) string {
	var parts []string
	for i, it := range items {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("... %d more", len(items)-i))
			break
		}
		parts = append(parts, brief(it.key))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
