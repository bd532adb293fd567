package record

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// decodeRecord reads a record as json.Unmarshal reads it into a Record,
// for records in the form AppendJSON writes (every record Lockbox writes
// today): searches and exports decode every record they pass, and
// encoding/json's reflection, run through Record's and Time's own
// unmarshalers, cost about twenty microseconds a record. Anything else —
// whitespace, null, an unknown or differently cased key, a number that is
// not a plain integer, a string with bytes that are not UTF-8 or with an
// escape of a character beyond ASCII,
// a time in another form, a record from before the common schema —
// reports false, and the caller decodes it with encoding/json.
// FuzzDecodeRecord holds the two to the same result.
//
// The strings of the result without escapes share s's memory.
func decodeRecord(s string) (Record, bool) {
	var r Record
	d := decoder{s: s}
	if !d.byte('{') {
		return r, false
	}
	if d.peek('}') {
		return r, false // no RecordType: a legacy record
	}
	for {
		key, ok := d.str()
		if !ok || !d.byte(':') {
			return r, false
		}
		switch key {
		case "CreationTime":
			ok = d.time(&r.CreationTime)
		case "Id":
			r.Id, ok = d.str()
		case "Operation":
			r.Operation, ok = d.str()
		case "OrganizationId":
			r.OrganizationId, ok = d.str()
		case "RecordType":
			var n int
			n, ok = d.int()
			r.RecordType = RecordType(n)
		case "ResultStatus":
			r.ResultStatus, ok = d.str()
		case "UserKey":
			r.UserKey, ok = d.str()
		case "UserType":
			var n int
			n, ok = d.int()
			r.UserType = UserType(n)
		case "Version":
			r.Version, ok = d.int()
		case "Workload":
			r.Workload, ok = d.str()
		case "ClientIP":
			r.ClientIP, ok = d.str()
		case "ObjectId":
			r.ObjectId, ok = d.str()
		case "UserId":
			r.UserId, ok = d.str()
		case "Parameters":
			r.Parameters, ok = d.parameters()
		case "ModifiedProperties":
			r.ModifiedProperties, ok = d.modified()
		case "ApprovalDecision":
			r.ApprovalDecision, ok = d.str()
		case "Comment":
			r.Comment, ok = d.str()
		case "LockboxTenant":
			r.LockboxTenant, ok = d.str()
		case "LockboxRequestId":
			r.LockboxRequestId, ok = d.str()
		case "LockboxApprover":
			r.LockboxApprover, ok = d.str()
		case "LockboxApprovalTime":
			var t Time
			ok = d.time(&t)
			r.LockboxApprovalTime = &t
		case "LockboxMethod":
			r.LockboxMethod, ok = d.str()
		case "LockboxPath":
			r.LockboxPath, ok = d.str()
		case "LockboxQuery":
			r.LockboxQuery, ok = d.str()
		case "LockboxQueryLength":
			r.LockboxQueryLength, ok = d.int()
		case "LockboxPolicyRevision":
			r.LockboxPolicyRevision, ok = d.str()
		case "ProviderUserId":
			r.ProviderUserId, ok = d.str()
		case "ProviderApproverId":
			r.ProviderApproverId, ok = d.str()
		default:
			return r, false
		}
		if !ok {
			return r, false
		}
		if d.byte('}') {
			break
		}
		if !d.byte(',') {
			return r, false
		}
	}
	// Nothing may follow; a record without a RecordType is upgraded by
	// UnmarshalJSON.
	return r, d.i == len(d.s) && r.RecordType != 0
}

// decoder reads the compact JSON of AppendJSON.
type decoder struct {
	s string
	i int
}

func (d *decoder) peek(c byte) bool { return d.i < len(d.s) && d.s[d.i] == c }

func (d *decoder) byte(c byte) bool {
	if d.peek(c) {
		d.i++
		return true
	}
	return false
}

// str reads a string of valid UTF-8. One without escapes shares s's
// memory; one with escapes is read by escaped.
func (d *decoder) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start, ascii := d.i, true
	for ; d.i < len(d.s); d.i++ {
		switch c := d.s[d.i]; {
		case c == '"':
			v := d.s[start:d.i]
			d.i++
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// escaped reads the rest of a string that began at start and has an
// escape at d.i. It takes the escapes AppendJSON writes for ASCII (a
// query's "&" is \u0026, a comment's quote \"), and leaves anything else —
// a \u escape of a non-ASCII character, bytes that are not UTF-8 — to
// encoding/json, whose replacement rules are not worth repeating here.
func (d *decoder) escaped(start int) (string, bool) {
	b := make([]byte, 0, d.i-start+16)
	b = append(b, d.s[start:d.i]...)
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(b) {
				return "", false
			}
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.s) {
			return "", false
		}
		switch e := d.s[d.i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			if d.i+6 > len(d.s) {
				return "", false
			}
			n, err := strconv.ParseUint(d.s[d.i+2:d.i+6], 16, 8)
			if err != nil || n >= utf8.RuneSelf {
				return "", false
			}
			b = append(b, byte(n))
			d.i += 4
		default:
			return "", false
		}
		d.i += 2
	}
	return "", false
}

// int reads a plain integer, as encoding/json reads one into an int.
func (d *decoder) int() (int, bool) {
	start := d.i
	neg := d.byte('-')
	n, digits := 0, 0
	for ; d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9'; d.i++ {
		if digits++; digits > 15 {
			return 0, false // leave the overflow rules to encoding/json
		}
		n = n*10 + int(d.s[d.i]-'0')
	}
	// JSON has no leading zeros; a fraction or exponent is not an int.
	if digits == 0 || digits > 1 && d.s[start+b2i(neg)] == '0' || d.peek('.') || d.peek('e') || d.peek('E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// time reads a time in TimeLayout.
func (d *decoder) time(t *Time) bool {
	s, ok := d.str()
	if !ok || len(s) != len(TimeLayout) {
		return false
	}
	v, err := time.Parse(TimeLayout, s)
	if err != nil {
		return false
	}
	t.Time = v
	return true
}

// fields reads an object of string fields into the values named by names,
// in any order, each at most as encoding/json would (the last one wins).
func (d *decoder) fields(names []string, vals []*string) bool {
	if !d.byte('{') {
		return false
	}
	if d.byte('}') {
		return true
	}
	for {
		key, ok := d.str()
		if !ok || !d.byte(':') {
			return false
		}
		found := false
		for i, n := range names {
			if n == key {
				if *vals[i], ok = d.str(); !ok {
					return false
				}
				found = true
				break
			}
		}
		if !found {
			return false
		}
		if d.byte('}') {
			return true
		}
		if !d.byte(',') {
			return false
		}
	}
}

var (
	parameterFields = []string{"Name", "Value"}
	modifiedFields  = []string{"Name", "OldValue", "NewValue"}
)

func (d *decoder) parameters() ([]Parameter, bool) {
	out := []Parameter{}
	if !d.byte('[') {
		return nil, false
	}
	if d.byte(']') {
		return out, true
	}
	for {
		var p Parameter
		if !d.fields(parameterFields, []*string{&p.Name, &p.Value}) {
			return nil, false
		}
		out = append(out, p)
		if d.byte(']') {
			return out, true
		}
		if !d.byte(',') {
			return nil, false
		}
	}
}

func (d *decoder) modified() ([]ModifiedProperty, bool) {
	out := []ModifiedProperty{}
	if !d.byte('[') {
		return nil, false
	}
	if d.byte(']') {
		return out, true
	}
	for {
		var p ModifiedProperty
		if !d.fields(modifiedFields, []*string{&p.Name, &p.OldValue, &p.NewValue}) {
			return nil, false
		}
		out = append(out, p)
		if d.byte(']') {
			return out, true
		}
		if !d.byte(',') {
			return nil, false
		}
	}
}

// UnmarshalStored decodes a stored record as Unmarshal does, and reports
// whether it holds fields Record does not know, at its top level or in its
// Parameters or ModifiedProperties: a record a newer Lockbox wrote during
// a rolling upgrade (docs/operations.md). r lacks those fields; a caller
// that passes the record on must pass the stored bytes too, or lose them.
// A record in AppendJSON's form is decoded once; any other is decoded
// strictly, and again leniently only when the strict decode fails.
func UnmarshalStored(s string) (r Record, newer bool, err error) {
	if r, ok := decodeRecord(s); ok {
		return r, false, nil
	}
	var in stored
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if dec.Decode(&in) == nil && dec.Decode(&struct{}{}) == io.EOF {
		return in.record(), false, nil
	}
	// An unknown field, or an error the lenient decode reports too.
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Record{}, false, err
	}
	return r, true, nil
}

// Unmarshal decodes a stored record (the JSON AppendJSON or json.Marshal
// wrote): without reflection when it is in AppendJSON's form, else with
// encoding/json, which also upgrades a legacy record.
func Unmarshal(s string) (Record, error) {
	if r, ok := decodeRecord(s); ok {
		return r, nil
	}
	var r Record
	err := json.Unmarshal([]byte(s), &r)
	return r, err
}
