package notify_test

import "path/filepath"

func filepathGlob(dir string) ([]string, error) { return filepath.Glob(filepath.Join(dir, "*.eml")) }
