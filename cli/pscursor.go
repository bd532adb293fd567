package cli

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The API binds the cursors it returns to its own filters (tenant, dates,
// user, operation, request id) and refuses one passed with others. It
// knows nothing of -RecordType, -ObjectIds, -IPAddresses and -FreeText,
// which lockboxctl applies itself: a search continued with its cursor and
// without -FreeText, or with another -RecordType, went on with records
// the first page's filter would not have shown, and without those it
// would have, and nothing said so. So Search-UnifiedAuditLog prints, after
// a search with any of the four, the API's cursor followed by a checksum
// of them (psCursorSep, psFiltersSum), and takes it back only with the
// same four. A search without them prints the API's cursor as it is.

// psCursorSep ends the API's cursor in one Search-UnifiedAuditLog prints
// and starts the checksum of its own filters. The API's cursors are
// base64url, which has no ".", and the shell takes "." as part of a word,
// so the cursor is still one word to copy.
const psCursorSep = "."

// errPSCursorBad refuses a --cursor holding psCursorSep that is not as
// wrapPSCursor writes it: a cut or damaged copy, which the API would be
// sent without the checksum that binds its filters.
var errPSCursorBad = errors.New("the cursor is not one Search-UnifiedAuditLog printed: pass it as it was printed, or start again without it")

// errPSCursorFilters refuses a --cursor printed for other -RecordType,
// -ObjectIds, -IPAddresses or -FreeText, as the API's invalid_cursor
// refuses one returned for other filters of its own.
var errPSCursorFilters = errors.New("the cursor was printed for a search with other filters: pass it with the same -RecordType, -ObjectIds, -IPAddresses and -FreeText as that search, or start again without it")

// wrapPSCursor is the cursor to print for the API's cursor c of a search
// with f: c itself when f filters nothing, so that such a search prints
// what it always did.
func wrapPSCursor(c string, f psFilter) string {
	if c == "" || !f.active() {
		return c
	}
	return c + psCursorSep + psFiltersSum(f)
}

// unwrapPSCursor returns the API's cursor of c, a cursor given with f. It
// refuses (errPSCursorBad) one that wrapPSCursor would not have written,
// and (errPSCursorFilters) one printed for filters other than f, among
// them none for some and some for none.
func unwrapPSCursor(c string, f psFilter) (string, error) {
	if c == "" {
		return "", nil
	}
	api, sum, wrapped := strings.Cut(c, psCursorSep)
	if !wrapped {
		if f.active() {
			return "", errPSCursorFilters
		}
		return c, nil
	}
	if api == "" || !isBase64URL(api) || len(sum) != 16 || strings.Trim(sum, "0123456789abcdef") != "" {
		return "", errPSCursorBad
	}
	if !f.active() || sum != psFiltersSum(f) {
		return "", errPSCursorFilters
	}
	return api, nil
}

func isBase64URL(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
	}) < 0
}

// psFiltersSum is the checksum of f as match reads it, so that spellings
// it treats alike sum alike: the record type as its number (ExchangeAdmin
// or 1), the object id patterns in lower case and the addresses as
// plainAddr made them, each list sorted without repeats (any one of it
// matches, in any order), and -FreeText in lower case. Like the API's, no
// secret and no signature: it keeps a mistake from passing unseen, and a
// cursor only names a place in the log, after which every record is
// checked as in a search without one.
func psFiltersSum(f psFilter) string {
	recordType := ""
	if f.hasRecordType {
		recordType = strconv.Itoa(int(f.recordType))
	}
	objectIDs := make([]string, 0, len(f.objectIDs))
	for _, p := range f.objectIDs {
		objectIDs = append(objectIDs, strings.ToLower(p))
	}
	slices.Sort(objectIDs)
	objectIDs = slices.Compact(objectIDs)
	addrs := slices.Clone(f.ips)
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)

	h := sha256.New()
	write := func(s string) {
		// Length-prefixed, so no two filter sets hash the same input.
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write("lockboxctl-ps-filters-1")
	write(recordType)
	write(strconv.Itoa(len(objectIDs)))
	for _, p := range objectIDs {
		write(p)
	}
	write(strconv.Itoa(len(addrs)))
	for _, a := range addrs {
		write(a.String())
	}
	write(f.freeText)
	return hex.EncodeToString(h.Sum(nil)[:8])
}
