package siemcheck

import (
	"bytes"
	"encoding/json"
)

// routing is what a line is routed by: the top-level members that say
// whose line it is and what kind, read by their exact names. encoding/json
// would match "lockboxtenant" for LockboxTenant and keep the last of two,
// while jq, Python and most SIEMs match names exactly: a line routed
// differently here than where the SIEM files it could hide a record from
// the check, or slip one past it.
type routing struct {
	// The members' values as JSON: present when not nil.
	recordType, id, tenant, orgID, sealedThrough, sealToken, classUID []byte
	// repeated says one of them appears twice: the line means different
	// things to different readers.
	repeated bool
}

// readRouting reads the routing members of line; false when it is not a
// JSON object.
func readRouting(line []byte) (r routing, ok bool) {
	if len(line) == 0 || line[0] != '{' || !json.Valid(line) {
		return r, false
	}
	// Valid JSON from here on: the scan below needs no checks of its own.
	i := skipSpace(line, 1)
	for line[i] != '}' {
		kEnd := stringEnd(line, i)
		key := line[i:kEnd]
		i = skipSpace(line, kEnd) + 1 // the colon
		i = skipSpace(line, i)
		vEnd := valueEnd(line, i)
		if slot := r.slot(key); slot != nil {
			if *slot != nil {
				r.repeated = true
			}
			*slot = line[i:vEnd]
		}
		i = skipSpace(line, vEnd)
		if line[i] == ',' {
			i = skipSpace(line, i+1)
		}
	}
	return r, true
}

// slot is where the member named by key (a JSON string, escapes and all)
// goes; nil for a member that routes nothing.
func (r *routing) slot(key []byte) *[]byte {
	name := key[1 : len(key)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		return r.named(text(key))
	}
	return r.named(string(name))
}

func (r *routing) named(name string) *[]byte {
	switch name {
	case "RecordType":
		return &r.recordType
	case "Id":
		return &r.id
	case "LockboxTenant":
		return &r.tenant
	case "OrganizationId":
		return &r.orgID
	case "SealedThrough":
		return &r.sealedThrough
	case "SealToken":
		return &r.sealToken
	case "class_uid":
		return &r.classUID
	}
	return nil
}

// text is the string a JSON value is, "" for any other value (or none).
func text(v []byte) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at b[i].
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index after the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}
