package validate

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
)

const chartDir = "../helm/finproxy"

// render renders the chart with values (YAML over values.yaml) as `helm
// template finproxy --namespace finproxy` would, and returns the decoded
// objects and NOTES.txt.
func render(t *testing.T, values string) ([]Object, string) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := chrt.Validate(); err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	opts := chartutil.ReleaseOptions{Name: "finproxy", Namespace: "finproxy", Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(chrt, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Engine{Strict: true}.Render(chrt, rv)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	var objs []Object
	var notes string
	for _, name := range names {
		base := name[strings.LastIndex(name, "/")+1:]
		switch {
		case base == "NOTES.txt":
			notes = out[name]
			continue
		case strings.HasPrefix(base, "_"):
			continue
		}
		o, err := Decode([]byte(out[name]))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out[name])
		}
		objs = append(objs, o...)
	}
	countedObjects("helm template --values "+fmt.Sprintf("%q", values), objs)
	t.Logf("rendered %d documents", len(objs))
	return objs, notes
}

func kindsOf(objs []Object) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.Kind+" "+o.Name)
	}
	sort.Strings(ks)
	return ks
}

func TestHelmChartDefaults(t *testing.T) {
	objs, notes := render(t, "")
	want := []string{
		"apps/v1/Deployment finproxy",
		"monitoring.coreos.com/v1/PrometheusRule finproxy",
		"monitoring.coreos.com/v1/ServiceMonitor finproxy",
		"networking.k8s.io/v1/NetworkPolicy finproxy",
		"policy/v1/PodDisruptionBudget finproxy",
		"v1/Secret finproxy",
		"v1/Service finproxy",
		"v1/Service finproxy-metrics",
	}
	if got := kindsOf(objs); !slices.Equal(got, want) {
		t.Errorf("rendered\n%v\nwant\n%v", got, want)
	}
	checkReplicas(t, objs, replicaSet{replicas: 3, networkPolicy: true, monitoring: true})
	if n := len(all[corev1.Secret](objs)); n != 1 {
		t.Errorf("%d Secrets, want 1", n)
	}
	for _, w := range []string{"http://finproxy.finproxy.svc:80", "secret value still contains REPLACE_ME", "trustedProxies still contains REPLACE_ME", "ServiceMonitor"} {
		if !strings.Contains(notes, w) {
			t.Errorf("NOTES.txt lacks %q:\n%s", w, notes)
		}
	}
}

func TestHelmChartValues(t *testing.T) {
	objs, notes := render(t, `
replicaCount: 5
trustedProxies: "10.244.3.0/24,10.244.7.12"
monitoring: {enabled: false}
secret: {existingSecret: finproxy-prod}
shutdown: {delaySeconds: 10, timeoutSeconds: 50}
podDisruptionBudget: {maxUnavailable: 2}
networkPolicy:
  redis: {ipBlocks: [10.1.2.3/32], ports: [6380]}
extraEnv:
  - {name: FINPROXY_LOG_LEVEL, value: debug}
`)
	want := []string{
		"apps/v1/Deployment finproxy",
		"networking.k8s.io/v1/NetworkPolicy finproxy",
		"policy/v1/PodDisruptionBudget finproxy",
		"v1/Service finproxy",
		"v1/Service finproxy-metrics",
	}
	if got := kindsOf(objs); !slices.Equal(got, want) {
		t.Errorf("rendered\n%v\nwant\n%v", got, want)
	}
	d := checkReplicas(t, objs, replicaSet{replicas: 5, networkPolicy: true, monitoring: false})
	pod := d.Spec.Template.Spec
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g != 70 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 10+50+10", deref(g))
	}
	if v := pod.Volumes[0].Secret; v == nil || v.SecretName != "finproxy-prod" {
		t.Errorf("secret volume = %+v, want the existing Secret finproxy-prod", pod.Volumes[0])
	}
	env := envOf(&pod.Containers[0])
	if env["FINPROXY_TRUSTED_PROXIES"] != "10.244.3.0/24,10.244.7.12" || env["FINPROXY_LOG_LEVEL"] != "debug" || env["FINPROXY_SHUTDOWN_DELAY"] != "10s" {
		t.Errorf("env = %v", env)
	}
	pdb := one[policyv1.PodDisruptionBudget](t, objs)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 2 {
		t.Errorf("PDB maxUnavailable = %v, want 2", pdb.Spec.MaxUnavailable)
	}
	np := one[networkingv1.NetworkPolicy](t, objs)
	redis := np.Spec.Egress[1]
	if len(redis.To) != 1 || redis.To[0].IPBlock == nil || redis.To[0].IPBlock.CIDR != "10.1.2.3/32" || redis.Ports[0].Port.IntValue() != 6380 {
		t.Errorf("Redis egress rule = %+v, want 10.1.2.3/32 port 6380", redis)
	}
	if strings.Contains(notes, "WARNING") || strings.Contains(notes, "ServiceMonitor") {
		t.Errorf("NOTES.txt warns or mentions monitoring although set:\n%s", notes)
	}
}

// TestHelmRulesCopy keeps the chart's copy of the alert rules identical to
// deploy/prometheus-alerts.yaml (the chart cannot read files outside it).
func TestHelmRulesCopy(t *testing.T) {
	a, err := os.ReadFile("../prometheus-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(chartDir + "/files/prometheus-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("deploy/helm/finproxy/files/prometheus-alerts.yaml differs from deploy/prometheus-alerts.yaml: cp deploy/prometheus-alerts.yaml deploy/helm/finproxy/files/")
	}
}

// TestHelmValuesSchema shows that values.schema.json refuses misspelt and
// mistyped values, as `helm install` would.
func TestHelmValuesSchema(t *testing.T) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(chrt.Schema) == 0 {
		t.Fatal("the chart has no values.schema.json")
	}
	for name, values := range map[string]string{
		"misspelt key":          "replicas: 5\n",
		"mistyped replicaCount": "replicaCount: three\n",
		"no replicas":           "replicaCount: 0\n",
		"misspelt nested key":   "monitoring: {enable: false}\n",
		"non-FINPROXY extraEnv": "extraEnv: [{name: HTTP_PROXY, value: x}]\n",
	} {
		vals, err := chartutil.ReadValues([]byte(values))
		if err != nil {
			t.Fatal(err)
		}
		opts := chartutil.ReleaseOptions{Name: "finproxy", Namespace: "finproxy", IsInstall: true}
		if _, err := chartutil.ToRenderValues(chrt, vals, opts, chartutil.DefaultCapabilities); err == nil {
			t.Errorf("%s: values accepted", name)
		}
	}
}

// TestHelmNotesNetworkPolicy: NOTES.txt tells callers the in-cluster URL;
// with the NetworkPolicy on, only the ingress controller's pods reach the
// proxy port, so NOTES must say so instead of promising every caller.
func TestHelmNotesNetworkPolicy(t *testing.T) {
	_, notes := render(t, `networkPolicy: {ingressController: {namespace: edge}}`)
	if !strings.Contains(notes, "only pods in namespace edge labelled app.kubernetes.io/name=ingress-nginx") {
		t.Errorf("NOTES.txt does not say that the NetworkPolicy admits only the ingress controller:\n%s", notes)
	}
	_, notes = render(t, `networkPolicy: {enabled: false}`)
	if strings.Contains(notes, "NetworkPolicy") {
		t.Errorf("NOTES.txt names a NetworkPolicy the chart does not create:\n%s", notes)
	}
}

// TestHelmPeerLabelsReplace: Helm merges a map given in values into the
// default one, so a peer's podLabels under another key would be ANDed with
// the default label and select no pod. values.yaml says how to replace the
// default (null its key); this is what that renders.
func TestHelmPeerLabelsReplace(t *testing.T) {
	objs, _ := render(t, `
networkPolicy:
  ingressController: {namespace: traefik, podLabels: {app.kubernetes.io/name: null, app: traefik}}
`)
	np := one[networkingv1.NetworkPolicy](t, objs)
	got := np.Spec.Ingress[0].From[0].PodSelector.MatchLabels
	if len(got) != 1 || got["app"] != "traefik" {
		t.Errorf("ingress controller podSelector = %v, want only app=traefik", got)
	}
	values, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(values), "app.kubernetes.io/name: null") {
		t.Errorf("values.yaml does not say how to replace a default podLabels key (Helm merges maps)")
	}
}

// TestHelmExtraEnvTracing: tracing is turned on by the standard
// OTEL_EXPORTER_OTLP_ENDPOINT (README "Tracing"), which extraEnv is the
// chart's only way to set.
func TestHelmExtraEnvTracing(t *testing.T) {
	objs, _ := render(t, `extraEnv: [{name: OTEL_EXPORTER_OTLP_ENDPOINT, value: "http://otel-collector.monitoring:4318"}, {name: OTEL_SERVICE_NAME, value: finproxy}]`)
	env := envOf(&one[appsv1.Deployment](t, objs).Spec.Template.Spec.Containers[0])
	if env["OTEL_EXPORTER_OTLP_ENDPOINT"] != "http://otel-collector.monitoring:4318" || env["OTEL_SERVICE_NAME"] != "finproxy" {
		t.Errorf("env = %v, want the OTEL_* variables of extraEnv", env)
	}
	// GOMEMLIMIT and GOGC: the Go runtime's knobs against the memory limit
	// (docs/performance.md).
	objs, _ = render(t, `extraEnv: [{name: GOMEMLIMIT, value: 200MiB}, {name: GOGC, value: "50"}]`)
	env = envOf(&one[appsv1.Deployment](t, objs).Spec.Template.Spec.Containers[0])
	if env["GOMEMLIMIT"] != "200MiB" || env["GOGC"] != "50" {
		t.Errorf("env = %v, want GOMEMLIMIT and GOGC of extraEnv", env)
	}
}
