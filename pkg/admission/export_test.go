package admission

import "time"

// SetCertCheckInterval lets tests see a rotated certificate at once.
func SetCertCheckInterval(d time.Duration) func() {
	old := certCheckInterval
	certCheckInterval = d
	return func() { certCheckInterval = old }
}
