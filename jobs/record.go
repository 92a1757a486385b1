package jobs

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
)

// The stored form of a Job (EncodeJob, DecodeJob):
//
//	"GJOB" | version (1 byte) | state (1 byte) | JSON of the Job | CRC-32C (4 bytes, big endian)
//
// The CRC covers everything before it. The state is repeated in a byte
// of its own so that counting jobs by state (Stats) reads one byte of a
// record instead of decoding it. The version lets a later gateway read
// the records of an earlier one; a record of an unknown version, a torn
// or corrupt one, is an error, never a panic.
const (
	recordMagic   = "GJOB"
	recordVersion = 1
	recordHead    = len(recordMagic) + 2
	recordMin     = recordHead + 4
)

// ErrCorrupt is the error of a stored job record that does not decode.
var ErrCorrupt = errors.New("jobs: corrupt job record")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// stateCodes number the states for the record's state byte; 0 is none.
var stateCodes = map[string]byte{StateQueued: 1, StateRunning: 2, StateSucceeded: 3, StateFailed: 4, StateCancelled: 5}

var stateNames = [...]string{1: StateQueued, 2: StateRunning, 3: StateSucceeded, 4: StateFailed, 5: StateCancelled}

// EncodeJob returns the stored form of j.
func EncodeJob(j *Job) ([]byte, error) {
	code, ok := stateCodes[j.State]
	if !ok {
		return nil, fmt.Errorf("jobs: job %s has no valid state (%q)", j.ID, j.State)
	}
	body, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, recordMin+len(body))
	b = append(b, recordMagic...)
	b = append(b, recordVersion, code)
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable)), nil
}

// DecodeJob decodes a record EncodeJob wrote; ErrCorrupt (wrapped) when
// it does not check.
func DecodeJob(b []byte) (*Job, error) {
	state, err := recordState(b)
	if err != nil {
		return nil, err
	}
	var j Job
	if err := json.Unmarshal(b[recordHead:len(b)-4], &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if j.State != state {
		return nil, fmt.Errorf("%w: state %q, header says %q", ErrCorrupt, j.State, state)
	}
	if !validID(j.ID) {
		return nil, fmt.Errorf("%w: id %q", ErrCorrupt, j.ID)
	}
	return &j, nil
}

// recordState checks b's frame (magic, version, CRC) and returns the
// state its header byte names.
func recordState(b []byte) (string, error) {
	if len(b) < recordMin || string(b[:len(recordMagic)]) != recordMagic {
		return "", fmt.Errorf("%w: no header", ErrCorrupt)
	}
	if v := b[len(recordMagic)]; v != recordVersion {
		return "", fmt.Errorf("%w: version %d, want %d", ErrCorrupt, v, recordVersion)
	}
	n := len(b) - 4
	if crc32.Checksum(b[:n], crcTable) != binary.BigEndian.Uint32(b[n:]) {
		return "", fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	c := int(b[len(recordMagic)+1])
	if c <= 0 || c >= len(stateNames) {
		return "", fmt.Errorf("%w: state %d", ErrCorrupt, c)
	}
	return stateNames[c], nil
}

// validID reports whether s is a job id: 32 lowercase hex digits.
func validID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
