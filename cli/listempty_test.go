package cli

import (
	"fmt"
	"strings"
	"testing"
)

// TestListFlagsRefuseAnEmptyValue: the list flags dropped an empty value
// ("a,,b", ",x", "x,", ","), where Search-UnifiedAuditLog's lists refuse
// one: in a script it is a variable that was not set, and dropped it
// changed what was sent without a word. "--notify "$SOC,$CISO"" with
// $CISO unset replaced the notification addresses with one, "--domain
// "$D1,$D2"" took a domain, and its approvers' rights, from the tenant,
// "--activity "Get-Mailbox,$MORE"" asked for less. Each is refused in one
// line and the pointer to the help, exit 2, before anything is sent. A
// value that is empty as a whole still means what each flag says of it
// (--notify "" removes every address).
func TestListFlagsRefuseAnEmptyValue(t *testing.T) {
	commands := map[string][]string{
		"--activity":            {"request", "create", "--tenant", "contoso", "--service", "exchange", "--service-request", "SR1", "--reason", "r", "--duration", "1h"},
		"--domain":              {"tenant", "update", "contoso"},
		"--global-admin":        {"tenant", "update", "contoso"},
		"--add-domain":          {"tenant", "update", "contoso"},
		"--remove-domain":       {"tenant", "update", "contoso"},
		"--add-global-admin":    {"tenant", "update", "contoso"},
		"--remove-global-admin": {"tenant", "update", "contoso"},
		"--notify":              {"tenant", "settings", "set", "contoso"},
		"--scope":               {"login", "--issuer", "https://127.0.0.1:9", "--client-id", "lockboxctl"},
	}
	onboard := []string{"tenant", "onboard", "northwind", "--name", "Northwind"}
	for flag, args := range commands {
		for _, v := range []string{"a,,b", ",x", "x,", ",", " , "} {
			t.Run(strings.Join(args[:2], " ")+" "+flag+" "+v, func(t *testing.T) {
				res := run(t, append(append([]string(nil), args...), flag, v), nil, nil)
				want := fmt.Sprintf("lockboxctl: invalid argument %q for %q flag: holds an empty value: leave it out rather than give it no value\n", v, flag)
				if res.code != exitUsage || !strings.HasPrefix(res.stderr, want) || strings.Count(res.stderr, "\n") != 2 || len(res.calls) != 0 {
					t.Errorf("exit %d, %d calls, stderr %q\nwant exit %d, no call, %q and the pointer to the help", res.code, len(res.calls), res.stderr, exitUsage, want)
				}
			})
		}
	}
	for _, flag := range []string{"--domain", "--global-admin"} {
		res := run(t, append(append([]string(nil), onboard...), flag, "northwind.example,"), nil, nil)
		if res.code != exitUsage || len(res.calls) != 0 || !strings.Contains(res.stderr, "holds an empty value") {
			t.Errorf("tenant onboard %s northwind.example,: exit %d, %d calls, stderr %q", flag, res.code, len(res.calls), res.stderr)
		}
	}

	// A value empty as a whole, and values spaced after their commas, as
	// before.
	res := run(t, []string{"tenant", "settings", "set", "contoso", "--notify", ""}, nil, nil)
	if res.code != 0 || len(res.calls) != 2 || !strings.Contains(res.calls[1].Body, `"notification_addresses":[]`) {
		t.Errorf(`--notify "": exit %d, calls %+v\n%s`, res.code, res.calls, res.stderr)
	}
	res = run(t, []string{"tenant", "settings", "set", "contoso", "--notify", "a@contoso.com, b@contoso.com"}, nil, nil)
	if res.code != 0 || len(res.calls) != 2 || !strings.Contains(res.calls[1].Body, `"notification_addresses":["a@contoso.com","b@contoso.com"]`) {
		t.Errorf(`--notify "a@contoso.com, b@contoso.com": exit %d, calls %+v\n%s`, res.code, res.calls, res.stderr)
	}
}
