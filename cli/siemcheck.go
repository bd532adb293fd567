package cli

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-oss/lockbox/audit/siemcheck"
	"github.com/lockbox-oss/lockbox/grantsig"
)

// maxKeysFile bounds what --keys reads: a JWKS of a few keys is a few
// kilobytes.
const maxKeysFile = 1 << 20

func (e *env) auditCheckSIEM() *cobra.Command {
	var tenant, keysFile, issuer string
	cmd := &cobra.Command{
		Use:   "check-siem --tenant T --keys KEYS FILE...",
		Short: "check a tenant's audit records as the SIEM holds them, offline: the hash chain and Lockbox's seals (exit 4 when broken)",
		Long: `Check a tenant's audit records as the SIEM received them, without Lockbox or its Redis: that
the records in FILE... (the json format's lines, as LOCKBOX_SIEM_SINK wrote them; a FILE ending
in .gz is read compressed, as logrotate leaves it) are the tenant's hash chain, none edited,
none missing between the first and the last, and up to the newest seal among them exactly what
Lockbox sealed.

Whoever can write to Redis can rewrite a tenant's chain and seal it again; the SIEM's copy,
written within seconds of each record, is out of their reach. Each record line carries its
place in the chain (LockboxEntry, LockboxPrevHash, LockboxHash); the seal lines carry seals
signed by the proxy's key, checked against KEYS, the JWKS that GET /v1/keys serves (fetch it
once and keep it: "curl -s $LOCKBOX_ADDR/v1/keys > keys.json"). Lines may come in any order,
over several files, and twice; other tenants' lines are passed over. Lines are routed by their
members' exact names, as other JSON readers route them. The check starts at the first record
the files hold: the records before it (another day's file, or before forwarding began) are not
checked. A seal naming an entry the files should hold but do not (between their first and last
record) shows the records were left out or renumbered; a record line of the tenant without its
place in the chain is no record the chain covers. OCSF events can't be checked: no hash covers
a translation.

Exit status: 0 when the records are intact; 4 when they are not (a record edited, left out or
slipped in, or a seal that is not Lockbox's or that the records do not match), after the
report; 1 when nothing could be checked (a file or KEYS unreadable, no record of the tenant
with its place in the chain, or seals of KEYS issued under another name than --issuer);
2 for a wrong command line.`,
		Args: func(cmd *cobra.Command, pos []string) error {
			if len(pos) == 0 {
				return &usageError{cmd: cmd, msg: "name the SIEM's files to check"}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, files []string) error {
			if tenant == "" || keysFile == "" {
				return e.usage("--tenant and --keys are required: the tenant whose records to check, and the JWKS that GET /v1/keys serves")
			}
			if issuer == "" {
				return e.usage("--issuer must name the seals' issuer: the deployment's LOCKBOX_PROXY_ASSERTION_ISSUER (lockbox unless set)")
			}
			ks, err := readKeys(keysFile)
			if err != nil {
				return err
			}
			c := siemcheck.New(tenant, ks, issuer)
			for _, f := range files {
				if err := readSIEMFile(c, f); err != nil {
					return err
				}
			}
			r, err := c.Check()
			if err != nil {
				return err
			}
			err = e.emit(r, nil, func(w io.Writer) error { return printSIEMCheck(w, r) })
			if !r.OK {
				if _, closed := errors.AsType[*stdoutClosedError](err); err != nil && !closed {
					fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(err.Error()))
				}
				return errChainBroken
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "the tenant whose records to check (required)")
	f.StringVar(&keysFile, "keys", "", "JWKS file of the keys that sign seals, as GET /v1/keys serves it (required)")
	f.StringVar(&issuer, "issuer", "lockbox", `the seals' issuer: the deployment's LOCKBOX_PROXY_ASSERTION_ISSUER`)
	_ = f.SetAnnotation("tenant", requiredAnnotation, nil)
	_ = f.SetAnnotation("keys", requiredAnnotation, nil)
	return cmd
}

func readKeys(path string) (*grantsig.KeySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--keys: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("--keys: %w", err)
	}
	if len(b) > maxKeysFile {
		return nil, fmt.Errorf("--keys %s: larger than %d bytes: not a JWKS", path, maxKeysFile)
	}
	if strings.TrimSpace(string(b)) == "" {
		// What curl leaves when it reached no server (curl -s, exit 7):
		// "unexpected end of JSON input" said nothing of that.
		return nil, fmt.Errorf("--keys %s is empty: fetch it with curl -s $LOCKBOX_ADDR/v1/keys > %s", path, path)
	}
	ks, err := grantsig.ParseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("--keys %s: not the JWKS GET /v1/keys serves: %w", path, err)
	}
	return ks, nil
}

func readSIEMFile(c *siemcheck.Checker, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		// Rotated and compressed, as logrotate's compress leaves it.
		z, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer z.Close()
		r = z
	}
	if err := c.Read(r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func printSIEMCheck(w io.Writer, r siemcheck.Result) error {
	span := fmt.Sprintf("entries %s to %s", clean(r.First), clean(r.Last))
	if r.FromStart {
		span += ", from the tenant's first record"
	} else {
		span += fmt.Sprintf("; the records before %s are not in the files", clean(r.First))
	}
	var err error
	switch {
	case r.OK:
		_, err = fmt.Fprintf(w, "SIEM copy of %s's audit log: intact, %d records (%s)\n", clean(r.Tenant), r.Records, span)
	case r.BrokenAt == "":
		// Not at an entry: lines no hash covers, or a seal line naming
		// none.
		_, err = fmt.Fprintf(w, "SIEM copy of %s's audit log: BROKEN (%d good records, %s)\n  problem: %s\n",
			clean(r.Tenant), r.Records, span, clean(r.Problem))
	default:
		_, err = fmt.Fprintf(w, "SIEM copy of %s's audit log: BROKEN after %d good records (%s)\n  at:      %s (record %s)\n  problem: %s\n",
			clean(r.Tenant), r.Records, span, cell(r.BrokenAt), cell(r.RecordId), clean(r.Problem))
	}
	if err == nil {
		_, err = fmt.Fprintf(w, "  sealed:  %s\n", siemSealLine(r))
	}
	if err == nil && (r.Unreadable > 0 || r.OCSF > 0) {
		_, err = fmt.Fprintf(w, "  passed over: %d lines that are not JSON objects, %d OCSF events\n", r.Unreadable, r.OCSF)
	}
	return err
}

func siemSealLine(r siemcheck.Result) string {
	records := "records"
	if r.UnsealedRecords == 1 {
		records = "record"
	}
	var s string
	switch {
	case r.Seal == siemcheck.SealVerified:
		s = fmt.Sprintf("through entry %s, signed at %s by key %s; %d %s after it covered by the hash chain alone",
			clean(r.SealedThrough), clean(r.SealedAt), clean(r.SealKeyID), r.UnsealedRecords, records)
	case r.Seal == siemcheck.SealUnverifiable:
		s = fmt.Sprintf("by key %s, which --keys does not hold: the seal can't be checked, the %d %s covered by the hash chain alone (add the retired key's public half)",
			cell(r.SealKeyID), r.UnsealedRecords, records)
	case r.Seal == siemcheck.SealForged:
		if r.SealedThrough == "" {
			return "FORGED: a seal line is not Lockbox's"
		}
		return fmt.Sprintf("FORGED: a seal line is not Lockbox's; the newest of Lockbox's matched is through entry %s, signed at %s by key %s",
			clean(r.SealedThrough), clean(r.SealedAt), clean(r.SealKeyID))
	case r.SealsChecked > 0:
		// Each names a record at or after the break.
		s = fmt.Sprintf("none that the records before the break match: the %d %s covered by the hash chain alone", r.UnsealedRecords, records)
	default:
		s = fmt.Sprintf("none among the records the files hold: the %d %s covered by the hash chain alone, which whoever can write the files can recompute", r.UnsealedRecords, records)
	}
	switch {
	case r.Seal != siemcheck.SealVerified:
	case r.SealsUnverifiable == 1:
		s += " (1 seal line can't be checked: a key --keys does not hold, or another issuer)"
	case r.SealsUnverifiable > 1:
		s += fmt.Sprintf(" (%d seal lines can't be checked: keys --keys does not hold, or another issuer)", r.SealsUnverifiable)
	}
	switch {
	case r.SealsBeyond == 1:
		s += " (1 seal line names a record the files do not hold)"
	case r.SealsBeyond > 1:
		s += fmt.Sprintf(" (%d seal lines name records the files do not hold)", r.SealsBeyond)
	}
	return s
}
