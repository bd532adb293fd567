package record

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends r encoded exactly as json.Marshal(r) encodes it: the
// same fields in the same order, the same omissions and the same escapes,
// byte for byte (FuzzAppendJSON holds it to that). It exists because every
// permitted call encodes one record, and encoding/json's reflection was the
// largest cost of the audit step.
//
// A field added to Record must be added here too; TestAppendJSONCoversEveryField
// fails until it is.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"CreationTime":`...)
	b = appendTime(b, r.CreationTime)
	b = appendStrField(b, `,"Id":`, r.Id)
	b = appendStrField(b, `,"Operation":`, r.Operation)
	b = appendStrField(b, `,"OrganizationId":`, r.OrganizationId)
	b = append(b, `,"RecordType":`...)
	b = strconv.AppendInt(b, int64(r.RecordType), 10)
	b = appendStrField(b, `,"ResultStatus":`, r.ResultStatus)
	b = appendStrField(b, `,"UserKey":`, r.UserKey)
	b = append(b, `,"UserType":`...)
	b = strconv.AppendInt(b, int64(r.UserType), 10)
	b = append(b, `,"Version":`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	b = appendStrField(b, `,"Workload":`, r.Workload)
	b = appendStrField(b, `,"ClientIP":`, r.ClientIP)
	b = appendStrField(b, `,"ObjectId":`, r.ObjectId)
	b = appendStrField(b, `,"UserId":`, r.UserId)
	if len(r.Parameters) > 0 {
		b = append(b, `,"Parameters":[`...)
		for i, p := range r.Parameters {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStrField(b, `{"Name":`, p.Name)
			b = appendStrField(b, `,"Value":`, p.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(r.ModifiedProperties) > 0 {
		b = append(b, `,"ModifiedProperties":[`...)
		for i, p := range r.ModifiedProperties {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStrField(b, `{"Name":`, p.Name)
			b = appendStrField(b, `,"OldValue":`, p.OldValue)
			b = appendStrField(b, `,"NewValue":`, p.NewValue)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendOmitEmpty(b, `,"ApprovalDecision":`, r.ApprovalDecision)
	b = appendOmitEmpty(b, `,"Comment":`, r.Comment)
	b = appendStrField(b, `,"LockboxTenant":`, r.LockboxTenant)
	b = appendOmitEmpty(b, `,"LockboxRequestId":`, r.LockboxRequestId)
	b = appendOmitEmpty(b, `,"LockboxApprover":`, r.LockboxApprover)
	if r.LockboxApprovalTime != nil {
		b = append(b, `,"LockboxApprovalTime":`...)
		b = appendTime(b, *r.LockboxApprovalTime)
	}
	b = appendOmitEmpty(b, `,"LockboxMethod":`, r.LockboxMethod)
	b = appendOmitEmpty(b, `,"LockboxPath":`, r.LockboxPath)
	b = appendOmitEmpty(b, `,"LockboxQuery":`, r.LockboxQuery)
	if r.LockboxQueryLength != 0 {
		b = append(b, `,"LockboxQueryLength":`...)
		b = strconv.AppendInt(b, int64(r.LockboxQueryLength), 10)
	}
	b = appendOmitEmpty(b, `,"LockboxPolicyRevision":`, r.LockboxPolicyRevision)
	b = appendOmitEmpty(b, `,"ProviderUserId":`, r.ProviderUserId)
	b = appendOmitEmpty(b, `,"ProviderApproverId":`, r.ProviderApproverId)
	return append(b, '}')
}

func appendTime(b []byte, t Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

func appendStrField(b []byte, name, s string) []byte {
	b = append(b, name...)
	return appendString(b, s)
}

func appendOmitEmpty(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendStrField(b, name, s)
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoding with HTML escaping on,
// as json.Marshal does it: '<', '>' and '&' as \u003c, \u003e, \u0026,
// control characters escaped, invalid UTF-8 as \ufffd, and U+2028 and
// U+2029 escaped for JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
