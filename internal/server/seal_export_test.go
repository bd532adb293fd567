package server

import "context"

// SealAll runs one round of s's sealer at once, as its loop does every
// LOCKBOX_AUDIT_SEAL_INTERVAL; sealing is false where s does not seal.
func (s *Server) SealAll(ctx context.Context) (sealed int, sealing bool, err error) {
	if s.sealer == nil {
		return 0, false, nil
	}
	n, err := s.sealer.SealAll(ctx)
	return n, true, err
}
