package admin

import "testing"

// TestLogValue: passwords and credentials are masked in logs, the
// admin-hash_passwords switch is not.
func TestLogValue(t *testing.T) {
	for name, want := range map[string]string{
		"mysql-monitor_password":  "********",
		"admin-admin_credentials": "********",
		"admin-cluster_password":  "********",
		"admin-hash_passwords":    "false",
		"mysql-monitor_username":  "false",
		"admin-stats_credentials": "********",
		"mysql-default_schema":    "false",
	} {
		if got := logValue(name, "false"); got != want {
			t.Errorf("logValue(%s) = %q, want %q", name, got, want)
		}
	}
}
