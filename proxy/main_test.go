package proxy

import (
	"testing"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestMain stops the redis-server the package's tests share, and removes
// its directory, once they are done.
func TestMain(m *testing.M) { redistest.Main(m) }
