package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// scanPickle walks the opcodes of the pickle at the start of data, as
// Python's pickletools.genops does, and returns its length up to and
// including the STOP opcode.
//
// It checks that every opcode is known and every argument (including
// length-prefixed strings and frames) lies within data, so that the
// unpickler run on data[:n] afterwards never allocates more than the input
// holds and never meets an opcode it cannot dispatch.
func scanPickle(data []byte) (int, error) {
	pos := 0
	need := func(n uint64) error {
		if n > uint64(len(data)-pos) {
			return fmt.Errorf("pickle truncated at offset %d (needs %d more bytes, %d left)", pos, n, len(data)-pos)
		}
		return nil
	}
	skipLines := func(lines int) error {
		for ; lines > 0; lines-- {
			i := bytes.IndexByte(data[pos:], '\n')
			if i < 0 {
				return fmt.Errorf("pickle truncated at offset %d (unterminated line)", pos)
			}
			pos += i + 1
		}
		return nil
	}
	le := binary.LittleEndian
	for {
		if pos >= len(data) {
			return 0, fmt.Errorf("pickle truncated at offset %d (no STOP opcode)", pos)
		}
		op := data[pos]
		at := pos
		pos++
		var err error
		switch op {
		case '.': // STOP
			return pos, nil
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
		case 'F', 'I', 'L', 'P', 'S', 'V', 'g', 'p': // newline-terminated argument
			err = skipLines(1)
		case 'c', 'i': // module and name lines
			err = skipLines(2)
		case 'U', 'C', 0x8a, 0x8c: // one-byte length, then data
			if err = need(1); err == nil {
				n := uint64(data[pos])
				pos++
				if err = need(n); err == nil {
					pos += int(n)
				}
			}
		case 'T', 'X', 'B', 0x8b: // four-byte length, then data
			if err = need(4); err == nil {
				n := uint64(le.Uint32(data[pos:]))
				pos += 4
				if (op == 'T' || op == 0x8b) && n >= 1<<31 {
					return 0, fmt.Errorf("negative length in pickle opcode 0x%02x at offset %d", op, at)
				}
				if err = need(n); err == nil {
					pos += int(n)
				}
			}
		case 0x8d, 0x8e, 0x96: // eight-byte length, then data
			if err = need(8); err == nil {
				n := le.Uint64(data[pos:])
				pos += 8
				if err = need(n); err == nil {
					pos += int(n)
				}
			}
		case 0x95: // FRAME: eight-byte frame size; the frame holds further opcodes
			if err = need(8); err == nil {
				n := le.Uint64(data[pos:])
				pos += 8
				err = need(n)
			}
		default:
			return 0, fmt.Errorf("unknown pickle opcode 0x%02x at offset %d", op, at)
		}
		if err != nil {
			return 0, err
		}
	}
}
