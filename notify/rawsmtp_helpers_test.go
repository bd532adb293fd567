package notify_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// rawSMTP is one connection to a mail server written by hand, over raw
// TCP, for the answers a real server library would not give (a lost
// answer, a refused RSET, a scripted refusal).
type rawSMTP struct {
	c net.Conn
	r *bufio.Reader
}

// serveRawSMTP accepts connections on a local port until the test ends,
// greets each as a mail server does and hands it to serve, and returns the
// address.
func serveRawSMTP(t *testing.T, serve func(*rawSMTP)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := &rawSMTP{c: c, r: bufio.NewReader(c)}
				s.reply("220 localhost ESMTP")
				serve(s)
			}()
		}
	}()
	return l.Addr().String()
}

func (s *rawSMTP) reply(l string) { _, _ = s.c.Write([]byte(l + "\r\n")) }

// command reads the client's next line, and returns it as sent and
// trimmed and upper-cased, to match a verb against.
func (s *rawSMTP) command() (line, cmd string, err error) {
	line, err = s.r.ReadString('\n')
	return line, strings.ToUpper(strings.TrimSpace(line)), err
}

// data reads a message after DATA up to its lone ".", and returns its
// lines, each with its CRLF.
func (s *rawSMTP) data() ([]string, error) {
	var lines []string
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		if l == ".\r\n" {
			return lines, nil
		}
		lines = append(lines, l)
	}
}
