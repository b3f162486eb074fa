package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// maxPickleBytes bounds one pickle of a .pth file (data.pkl of the zip
// format; each pickle of the legacy and tar formats). A pickled state dict
// takes about 125 bytes a tensor (torch 1.13): 115 KB for torchvision's
// resnet152 (932 tensors), 232 KB for a training checkpoint that adds
// Adam's state. 64 MiB is over 250 times what any ResNet checkpoint needs.
const maxPickleBytes = 64 << 20

// maxPickleIntDigits bounds the decimal digits of a pickled text integer
// (the INT and LONG opcodes), whose conversion takes time quadratic in its
// length. It is CPython's own limit on converting a str to an int
// (sys.int_info.default_max_str_digits); a checkpoint's integers (sizes,
// strides, counts, legacy magic number) have at most 25 digits.
const maxPickleIntDigits = 4300

// maxPickleLongBytes bounds the bytes of a pickled binary integer (the
// LONG4 opcode; LONG1 holds at most 255), which gopickle decodes in time
// quadratic in its length: as many bytes as maxPickleIntDigits decimal
// digits need (1786), rounded up. A checkpoint's largest integer, the
// legacy magic number, takes 10 bytes.
const maxPickleLongBytes = 2048

// maxUnpickleBytes bounds the memory that unpickling one pickle may
// allocate, as scanPickle estimates it (pickleCost): gopickle allocates up
// to a few hundred bytes for an opcode of one byte (a MARK opcode costs a
// 16-slot stack), so a pickle's size alone does not bound its memory. A
// state dict costs about 12 KB a tensor by that estimate (10.8 MB for
// resnet152, 26 MB for a training checkpoint with Adam's state, which
// really allocate 2.6 and 5.6 MB); 256 MiB is ten times the largest ResNet
// training checkpoint.
const maxUnpickleBytes = 256 << 20

// Estimated allocations of gopickle for one opcode, in bytes (see
// pickleCost): every opcode may push one boxed value onto a stack that
// grows geometrically and land in a container or the memo; MARK opens a new
// stack of 16 slots; opcodes that build containers or objects, or call
// into this package (persistent ids, classes, reduce), allocate their
// result. These are upper bounds that TestPickleCostBoundsAllocation checks
// against what gopickle really allocates.
const (
	pickleOpCost     = 256
	pickleMarkCost   = 512
	pickleObjectCost = 512
	pickleFixedCost  = 64 << 10 // the unpickler itself: its memo map, stacks
)

// pickleCost estimates, as an upper bound, what gopickle allocates to
// execute opcode op whose argument is n bytes long.
func pickleCost(op byte, n uint64) uint64 {
	switch op {
	case '(': // MARK
		return pickleMarkCost
	case '}', ']', ')', 0x8f, 0x85, 0x86, 0x87, 'd', 'l', 't', 0x91, // containers
		'R', 'b', 0x81, 0x92, 0x93, 'Q': // objects, classes, persistent ids
		return pickleObjectCost
	case 'c', 'i': // GLOBAL, INST: two lines, then a class
		return pickleObjectCost + 16*n
	case 0x8a, 0x8b: // LONG1, LONG4: a big.Int built byte by byte
		return pickleOpCost + 64*n
	case 0x95: // FRAME: read into a buffer of its size
		return pickleOpCost + n
	case 'I', 'L': // a decimal integer on a line, read into a growing buffer, then parsed
		return pickleOpCost + 32*n
	case 'F', 'P', 'S', 'V', 'g', 'p': // a line, read into a growing buffer
		return pickleOpCost + 16*n
	}
	// Counted strings and bytes are read into a buffer, then converted.
	return pickleOpCost + 4*n
}

// scanPickle walks the opcodes of the pickle at the start of data, as
// Python's pickletools.genops does, and returns its length up to and
// including the STOP opcode.
//
// It checks that every opcode is known and every argument (including
// length-prefixed strings and frames) lies within data, so that the
// unpickler run on data[:n] afterwards never meets an opcode it cannot
// dispatch; that the pickle is at most maxPickleBytes long; that no
// integer is longer than maxPickleIntDigits digits or maxPickleLongBytes
// bytes; and that what unpickling it would allocate, as pickleCost
// estimates it, stays within maxUnpickleBytes.
func scanPickle(data []byte) (int, error) {
	n, _, err := scanPickleCost(data)
	return n, err
}

// scanPickleCost is scanPickle, also returning the estimated allocation of
// unpickling (see pickleCost).
func scanPickleCost(data []byte) (int, uint64, error) {
	if len(data) > maxPickleBytes+1 {
		data = data[:maxPickleBytes+1] // a longer pickle fails below
	}
	pos := 0
	need := func(n uint64) error {
		if n > uint64(len(data)-pos) {
			if len(data) > maxPickleBytes {
				return fmt.Errorf("pickle longer than %d MiB, more than any state dict needs", maxPickleBytes>>20)
			}
			return fmt.Errorf("pickle truncated at offset %d (needs %d more bytes, %d left)", pos, n, len(data)-pos)
		}
		return nil
	}
	// line returns the length of the newline-terminated argument at pos
	// and moves past it.
	line := func() (uint64, error) {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			if len(data) > maxPickleBytes {
				return 0, fmt.Errorf("pickle longer than %d MiB, more than any state dict needs", maxPickleBytes>>20)
			}
			return 0, fmt.Errorf("pickle truncated at offset %d (unterminated line)", pos)
		}
		pos += i + 1
		return uint64(i), nil
	}
	le := binary.LittleEndian
	var cost uint64 = pickleFixedCost
	for {
		if pos >= len(data) {
			if len(data) > maxPickleBytes {
				return 0, 0, fmt.Errorf("pickle longer than %d MiB, more than any state dict needs", maxPickleBytes>>20)
			}
			return 0, 0, fmt.Errorf("pickle truncated at offset %d (no STOP opcode)", pos)
		}
		op := data[pos]
		at := pos
		pos++
		var n uint64 // the argument's length, for the cost
		var err error
		switch op {
		case '.': // STOP
			if pos > maxPickleBytes {
				return 0, 0, fmt.Errorf("pickle of %d bytes, more than the %d MiB any state dict needs", pos, maxPickleBytes>>20)
			}
			return pos, cost, nil
		case '(', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98:
			// no argument
		case 'K', 'h', 'q', 0x80, 0x82: // one-byte argument
			err = need(1)
			pos++
		case 'M', 0x83:
			err = need(2)
			pos += 2
		case 'J', 'j', 'r', 0x84:
			err = need(4)
			pos += 4
		case 'G':
			err = need(8)
			pos += 8
		case 'I', 'L': // INT, LONG: a decimal integer on a line
			if n, err = line(); err == nil && n > maxPickleIntDigits+2 { // sign, "L"
				err = fmt.Errorf("integer of %d digits at offset %d in the pickle: more than the %d digits allowed", n, at, maxPickleIntDigits)
			}
		case 'F', 'P', 'S', 'V', 'g', 'p': // newline-terminated argument
			n, err = line()
		case 'c', 'i': // module and name lines
			var m uint64
			if n, err = line(); err == nil {
				m, err = line()
				n += m
			}
		case 'U', 'C', 0x8a, 0x8c: // one-byte length, then data
			if err = need(1); err == nil {
				n = uint64(data[pos])
				pos++
				if op == 0x8a && n == 0 {
					// CPython never writes it (0 is a BININT1), and gopickle
					// cannot decode it.
					return 0, 0, fmt.Errorf("integer of zero bytes (LONG1) at offset %d in the pickle", at)
				}
				if err = need(n); err == nil {
					pos += int(n)
				}
			}
		case 'T', 'X', 'B', 0x8b: // four-byte length, then data
			if err = need(4); err == nil {
				n = uint64(le.Uint32(data[pos:]))
				pos += 4
				if (op == 'T' || op == 0x8b) && n >= 1<<31 {
					return 0, 0, fmt.Errorf("negative length in pickle opcode 0x%02x at offset %d", op, at)
				}
				if op == 0x8b && (n == 0 || n > maxPickleLongBytes) {
					return 0, 0, fmt.Errorf("integer of %d bytes (LONG4) at offset %d in the pickle: 1 to %d bytes allowed", n, at, maxPickleLongBytes)
				}
				if err = need(n); err == nil {
					pos += int(n)
				}
			}
		case 0x8d, 0x8e, 0x96: // eight-byte length, then data
			if err = need(8); err == nil {
				n = le.Uint64(data[pos:])
				pos += 8
				if err = need(n); err == nil {
					pos += int(n)
				}
			}
		case 0x95: // FRAME: eight-byte frame size; the frame holds further opcodes
			if err = need(8); err == nil {
				n = le.Uint64(data[pos:])
				pos += 8
				err = need(n)
			}
		default:
			return 0, 0, fmt.Errorf("unknown pickle opcode 0x%02x at offset %d", op, at)
		}
		if err != nil {
			return 0, 0, err
		}
		if cost += pickleCost(op, n); cost > maxUnpickleBytes {
			return 0, 0, fmt.Errorf("pickle too complex: unpickling it up to offset %d would take over %d MiB of memory, more than any state dict needs", at, maxUnpickleBytes>>20)
		}
	}
}
