package validate

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// promtool runs Debian's promtool (scripts/ensure-prometheus.sh installs it).
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRules checks the rules with promtool and runs their unit tests:
// every alert fires on the series of deploy/prometheus-alerts.test.yaml
// that should make it fire, and stays silent on the others.
func TestAlertRules(t *testing.T) {
	out := promtool(t, "check", "rules", "../prometheus-alerts.yaml")
	if !strings.Contains(out, "SUCCESS: 8 rules found") {
		t.Errorf("promtool check rules: %s", out)
	}
	promtool(t, "test", "rules", "../prometheus-alerts.test.yaml")
	counted("../prometheus-alerts.yaml", "rule groups")
	counted("../prometheus-alerts.test.yaml", "rule tests")

	// Every alert of the file has a test that makes it fire.
	tests, err := os.ReadFile("../prometheus-alerts.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range alertsSpec(t).Groups {
		for _, r := range g.Rules {
			if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n        exp_alerts:\n          - exp_labels") {
				t.Errorf("alert %s has no test that makes it fire", r.Alert)
			}
		}
	}
}

// TestPrometheusRuleMatchesAlerts guards the comparison itself: one label
// changed in a PrometheusRule makes it fail.
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	want := alertsSpec(t)
	var pr monitoringv1.PrometheusRule
	pr.Name = "drifted"
	pr.Spec = alertsSpec(t)
	if d := rulesDiff(want, &pr); d != "" {
		t.Fatalf("the same rules differ: %s", d)
	}
	pr.Spec.Groups[0].Rules[0].Labels["severity"] = "info"
	if rulesDiff(want, &pr) == "" {
		t.Errorf("a drifted PrometheusRule passed the comparison")
	}
}
