package validate

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// documents holds every distinct document decoded strictly and checked
// (source, kind and name), over all tests; TestMain prints the count.
var documents = struct {
	sync.Mutex
	seen map[string]bool
}{seen: map[string]bool{}}

// counted records documents of source as validated.
func counted(source string, names ...string) {
	documents.Lock()
	defer documents.Unlock()
	for _, n := range names {
		documents.seen[source+" "+n] = true
	}
}

// countedObjects is counted for decoded objects.
func countedObjects(source string, objs []Object) {
	for _, o := range objs {
		counted(source, o.Kind+"/"+o.Name)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	documents.Lock()
	fmt.Printf("deploy/validate: %d distinct documents decoded strictly and checked\n", len(documents.seen))
	documents.Unlock()
	os.Exit(code)
}

const (
	uid         = 65532 // the image's numeric user and group (Dockerfile)
	placeholder = "REPLACE_ME"
)

// decodeFile decodes every document of a manifest file and counts them.
func decodeFile(t *testing.T, name string) []Object {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	countedObjects(name, objs)
	t.Logf("%s: %d documents", name, len(objs))
	return objs
}

// all returns the objects of type T.
func all[T any](objs []Object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.Value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the only object of type T, failing unless there is exactly one.
func one[T any](t *testing.T, objs []Object) *T {
	t.Helper()
	vs := all[T](objs)
	if len(vs) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want 1", len(vs), zero)
	}
	return vs[0]
}

func selects(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		t.Errorf("%s: empty selector (selects everything)", what)
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %s does not match the pod labels %v", what, s, podLabels)
	}
}

func envOf(c *corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			m[e.Name] = "<valueFrom>"
			continue
		}
		m[e.Name] = e.Value
	}
	return m
}

// finproxyContainer returns finproxy's container in d's pod: a native
// sidecar (an init container with restartPolicy Always) or a container.
func finproxyContainer(t *testing.T, d *appsv1.Deployment, sidecar bool) *corev1.Container {
	t.Helper()
	spec := &d.Spec.Template.Spec
	list, other := spec.Containers, spec.InitContainers
	if sidecar {
		list, other = other, list
	}
	for _, c := range other {
		if c.Name == "finproxy" {
			t.Errorf("finproxy is in the wrong container list (sidecar=%v)", sidecar)
		}
	}
	for i := range list {
		c := &list[i]
		if c.Name != "finproxy" {
			continue
		}
		if sidecar && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
			t.Errorf("sidecar: finproxy's init container lacks restartPolicy: Always (not a native sidecar)")
		}
		return c
	}
	t.Fatalf("deployment %s has no container finproxy (sidecar=%v)", d.Name, sidecar)
	return nil
}

// checkPod asserts what every finproxy pod needs: hardening, probes on named
// ports, resources, secrets from files under a mounted Secret, a drain
// without preStop inside the grace period.
func checkPod(t *testing.T, objs []Object, d *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	pod := &d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		t.Fatalf("finproxy has no securityContext")
	}
	user, group, nonRoot := psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot
	if csc.RunAsUser != nil {
		user = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		group = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		nonRoot = csc.RunAsNonRoot
	}
	if user == nil || *user != uid {
		t.Errorf("runAsUser = %v, want the numeric %d (runAsNonRoot needs a numeric user)", deref(user), uid)
	}
	if group == nil || *group != uid {
		t.Errorf("runAsGroup = %v, want %d", deref(group), uid)
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("runAsNonRoot not true")
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem not true")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation not false")
	}
	if csc.Privileged != nil && *csc.Privileged {
		t.Errorf("privileged")
	}
	if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
		t.Errorf("capabilities = %+v, want drop [ALL] and nothing added", csc.Capabilities)
	}
	seccomp := psc.SeccompProfile
	if csc.SeccompProfile != nil {
		seccomp = csc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile = %+v, want RuntimeDefault", seccomp)
	}

	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	probes := []struct {
		name  string
		p     *corev1.Probe
		paths []string
	}{
		{"startupProbe", c.StartupProbe, []string{"/healthz", "/readyz"}},
		{"readinessProbe", c.ReadinessProbe, []string{"/readyz"}},
		{"livenessProbe", c.LivenessProbe, []string{"/healthz"}},
	}
	for _, pr := range probes {
		if pr.p == nil || pr.p.HTTPGet == nil {
			t.Errorf("%s: missing or not httpGet", pr.name)
			continue
		}
		g := pr.p.HTTPGet
		if g.Port.Type != intstr.String {
			t.Errorf("%s: port %s is not a named port", pr.name, g.Port.String())
		} else if ports[g.Port.StrVal] != 9090 {
			t.Errorf("%s: port %q is not the container's admin port 9090 (ports %v)", pr.name, g.Port.StrVal, ports)
		}
		if !slices.Contains(pr.paths, g.Path) {
			t.Errorf("%s: path %q, want one of %v", pr.name, g.Path, pr.paths)
		}
	}

	r := c.Resources
	if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v, want cpu and memory requests and a memory limit", r)
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		t.Errorf("preStop hook: finproxy drains by itself (FINPROXY_SHUTDOWN_DELAY)")
	}

	env := envOf(c)
	dur := func(name, def string) time.Duration {
		v, ok := env[name]
		if !ok {
			v = def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("%s=%q: %v", name, v, err)
		}
		return d
	}
	drain := dur("FINPROXY_SHUTDOWN_DELAY", "5s") + dur("FINPROXY_SHUTDOWN_TIMEOUT", "25s")
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds = %v, want above delay + timeout = %s", deref(pod.TerminationGracePeriodSeconds), drain)
	}

	for _, name := range []string{"FINPROXY_CLIENT_ID", "FINPROXY_CLIENT_SECRET", "FINPROXY_IDENTITY_SECRET", "FINPROXY_REDIS_URL", "FINPROXY_JWT_HMAC_SECRET"} {
		if _, ok := env[name]; ok {
			t.Errorf("%s set in the pod spec: secrets come from files (%s_FILE)", name, name)
		}
	}
	for _, name := range []string{"FINPROXY_CLIENT_ID_FILE", "FINPROXY_CLIENT_SECRET_FILE", "FINPROXY_IDENTITY_SECRET_FILE"} {
		if _, ok := env[name]; !ok {
			t.Errorf("%s not set", name)
		}
	}
	secrets := map[string]*corev1.Secret{}
	for _, s := range all[corev1.Secret](objs) {
		secrets[s.Name] = s
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	files := 0
	for name, p := range env {
		if !strings.HasSuffix(name, "_FILE") {
			continue
		}
		files++
		checkFile(t, name, p, c.VolumeMounts, volumes, secrets)
	}
	if files == 0 {
		t.Errorf("no *_FILE variable")
	}
}

// checkFile asserts that the file p lies under a mount of a Secret volume
// and, when that Secret is among the manifests, that it has the key.
func checkFile(t *testing.T, name, p string, mounts []corev1.VolumeMount, volumes map[string]corev1.Volume, secrets map[string]*corev1.Secret) {
	t.Helper()
	p = path.Clean(p)
	for _, m := range mounts {
		dir := path.Clean(m.MountPath)
		if !strings.HasPrefix(p, dir+"/") {
			continue
		}
		v, ok := volumes[m.Name]
		if !ok || v.Secret == nil {
			t.Errorf("%s=%s: mount %s is not a Secret volume", name, p, m.Name)
			return
		}
		if !m.ReadOnly {
			t.Errorf("%s: mount %s not readOnly", name, m.Name)
		}
		key := strings.TrimPrefix(p, dir+"/")
		if len(v.Secret.Items) > 0 {
			t.Errorf("%s: secret volume %s remaps items; keep the keys as file names", name, m.Name)
		}
		if s, ok := secrets[v.Secret.SecretName]; ok {
			_, inString := s.StringData[key]
			_, inData := s.Data[key]
			if !inString && !inData {
				t.Errorf("%s=%s: Secret %s has no key %q", name, p, s.Name, key)
			}
		}
		return
	}
	t.Errorf("%s=%s lies under no volume mount of the container", name, p)
}

// checkSecrets asserts that every secret value is a REPLACE_ME placeholder.
func checkSecrets(t *testing.T, objs []Object) {
	t.Helper()
	for _, s := range all[corev1.Secret](objs) {
		if len(s.StringData)+len(s.Data) == 0 {
			t.Errorf("Secret %s is empty", s.Name)
		}
		for k, v := range s.StringData {
			if !strings.Contains(v, placeholder) {
				t.Errorf("Secret %s key %s: a value without %s (finproxy would accept a secret published here)", s.Name, k, placeholder)
			}
		}
		for k, v := range s.Data {
			if !strings.Contains(string(v), placeholder) {
				t.Errorf("Secret %s key %s: a value without %s", s.Name, k, placeholder)
			}
		}
	}
}

// checkTrustedProxies asserts a narrow FINPROXY_TRUSTED_PROXIES: a marked
// placeholder or prefixes of /20 (IPv4) or /116 (IPv6) and narrower.
func checkTrustedProxies(t *testing.T, v string) {
	t.Helper()
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" || strings.Contains(item, placeholder) {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			if _, err := netip.ParseAddr(item); err != nil {
				t.Errorf("FINPROXY_TRUSTED_PROXIES: %q is neither a CIDR nor an address", item)
			}
			continue
		}
		if p.Bits() < p.Addr().BitLen()-12 {
			t.Errorf("FINPROXY_TRUSTED_PROXIES: %s is too wide (trusts every pod in it)", p)
		}
	}
}

// replicaSet holds the expectations for a Deployment of replicas.
type replicaSet struct {
	replicas      int32
	networkPolicy bool
	monitoring    bool
}

// checkReplicas asserts the Deployment-of-replicas properties and those of
// the objects around it.
func checkReplicas(t *testing.T, objs []Object, want replicaSet) *appsv1.Deployment {
	t.Helper()
	d := one[appsv1.Deployment](t, objs)
	c := finproxyContainer(t, d, false)
	checkPod(t, objs, d, c)
	checkSecrets(t, objs)
	podLabels := d.Spec.Template.Labels
	selects(t, "Deployment selector", d.Spec.Selector, podLabels)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != want.replicas {
		t.Errorf("replicas = %v, want %d", deref(d.Spec.Replicas), want.replicas)
	}
	env := envOf(c)
	if env["FINPROXY_STORE"] != "redis" {
		t.Errorf("FINPROXY_STORE = %q, want redis", env["FINPROXY_STORE"])
	}
	if env["FINPROXY_REDIS_URL_FILE"] == "" {
		t.Errorf("FINPROXY_REDIS_URL_FILE not set")
	}
	tp, ok := env["FINPROXY_TRUSTED_PROXIES"]
	if !ok {
		t.Errorf("FINPROXY_TRUSTED_PROXIES not set")
	}
	checkTrustedProxies(t, tp)

	keys := map[string]bool{}
	for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
		keys[tsc.TopologyKey] = true
		selects(t, "topologySpreadConstraint "+tsc.TopologyKey, tsc.LabelSelector, podLabels)
	}
	for _, k := range []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"} {
		if !keys[k] {
			t.Errorf("no topologySpreadConstraint on %s", k)
		}
	}

	pdb := one[policyv1.PodDisruptionBudget](t, objs)
	selects(t, "PodDisruptionBudget", pdb.Spec.Selector, podLabels)
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Errorf("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}

	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	services := all[corev1.Service](objs)
	proxyServed := false
	for _, s := range services {
		selects(t, "Service "+s.Name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, podLabels)
		for _, p := range s.Spec.Ports {
			if p.TargetPort.Type != intstr.String || ports[p.TargetPort.StrVal] == 0 {
				t.Errorf("Service %s port %s: targetPort %s is not a named port of the container", s.Name, p.Name, p.TargetPort.String())
			}
			if p.TargetPort.StrVal == "proxy" {
				proxyServed = true
			}
		}
	}
	if !proxyServed {
		t.Errorf("no Service exposes the proxy port")
	}

	nps := all[networkingv1.NetworkPolicy](objs)
	if want.networkPolicy {
		if len(nps) != 1 {
			t.Fatalf("%d NetworkPolicies, want 1", len(nps))
		}
		checkNetworkPolicy(t, nps[0], podLabels, ports)
	} else if len(nps) != 0 {
		t.Errorf("%d NetworkPolicies, want none", len(nps))
	}

	sms := all[monitoringv1.ServiceMonitor](objs)
	rules := all[monitoringv1.PrometheusRule](objs)
	if want.monitoring {
		if len(sms) != 1 || len(rules) != 1 {
			t.Fatalf("%d ServiceMonitors and %d PrometheusRules, want 1 each", len(sms), len(rules))
		}
		checkServiceMonitor(t, sms[0], services)
		checkRulesMatch(t, rules[0])
	} else if len(sms)+len(rules) != 0 {
		t.Errorf("%d ServiceMonitors and %d PrometheusRules, want none", len(sms), len(rules))
	}
	return d
}

// checkNetworkPolicy asserts ingress only from named peers to named ports,
// and egress only to DNS, Redis and HTTPS.
func checkNetworkPolicy(t *testing.T, np *networkingv1.NetworkPolicy, podLabels map[string]string, ports map[string]int32) {
	t.Helper()
	selects(t, "NetworkPolicy podSelector", &np.Spec.PodSelector, podLabels)
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("policyTypes = %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	reached := map[string]bool{}
	for i, r := range np.Spec.Ingress {
		if len(r.From) == 0 || len(r.Ports) == 0 {
			t.Errorf("ingress rule %d: open to every peer or every port", i)
		}
		for _, f := range r.From {
			if f.IPBlock != nil || (f.PodSelector == nil && f.NamespaceSelector == nil) {
				t.Errorf("ingress rule %d: peer %+v is not a pod selection", i, f)
			}
			if f.NamespaceSelector != nil && len(f.NamespaceSelector.MatchLabels)+len(f.NamespaceSelector.MatchExpressions) == 0 {
				t.Errorf("ingress rule %d: every namespace", i)
			}
		}
		for _, p := range r.Ports {
			if p.Port == nil || p.Port.Type != intstr.String || ports[p.Port.StrVal] == 0 {
				t.Errorf("ingress rule %d: port %v is not a named port of the container", i, p.Port)
				continue
			}
			reached[p.Port.StrVal] = true
		}
	}
	for _, name := range []string{"proxy", "admin"} {
		if !reached[name] {
			t.Errorf("NetworkPolicy admits nobody to port %s", name)
		}
	}
	allowed := map[int32]string{53: "dns", 6379: "redis", 6380: "redis", 26379: "redis", 443: "https"}
	seen := map[string]bool{}
	for i, r := range np.Spec.Egress {
		if len(r.Ports) == 0 {
			t.Errorf("egress rule %d: every port", i)
		}
		if len(r.To) == 0 {
			t.Errorf("egress rule %d: every destination", i)
		}
		for _, p := range r.Ports {
			if p.Port == nil || p.Port.Type != intstr.Int || allowed[p.Port.IntVal] == "" {
				t.Errorf("egress rule %d: port %v is not DNS, Redis or HTTPS", i, p.Port)
				continue
			}
			seen[allowed[p.Port.IntVal]] = true
		}
		for _, to := range r.To {
			if to.IPBlock != nil && slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port.IntVal != 443 }) {
				if strings.HasSuffix(to.IPBlock.CIDR, "/0") {
					t.Errorf("egress rule %d: %s to every address on a port other than 443", i, to.IPBlock.CIDR)
				}
			}
		}
	}
	for _, w := range []string{"dns", "redis", "https"} {
		if !seen[w] {
			t.Errorf("NetworkPolicy lets no %s out", w)
		}
	}
}

// checkServiceMonitor asserts that the ServiceMonitor selects a Service
// with the endpoint's port, scraped as job "finproxy".
func checkServiceMonitor(t *testing.T, sm *monitoringv1.ServiceMonitor, services []*corev1.Service) {
	t.Helper()
	if len(sm.Spec.Endpoints) == 0 {
		t.Fatalf("ServiceMonitor without endpoints")
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("ServiceMonitor selector %v: %v", sm.Spec.Selector, err)
	}
	matched := 0
	for _, s := range services {
		if !sel.Matches(labels.Set(s.Labels)) {
			continue
		}
		matched++
		if job := s.Labels[sm.Spec.JobLabel]; job != "finproxy" {
			t.Errorf("ServiceMonitor jobLabel %q gives job %q on Service %s; the alert rules match job=\"finproxy\"", sm.Spec.JobLabel, job, s.Name)
		}
		for _, e := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
				t.Errorf("ServiceMonitor endpoint port %q not on Service %s", e.Port, s.Name)
			}
			if e.Path != "/metrics" {
				t.Errorf("ServiceMonitor path %q, want /metrics", e.Path)
			}
		}
	}
	if matched != 1 {
		t.Errorf("ServiceMonitor selects %d Services, want 1", matched)
	}
}

// alertsSpec decodes deploy/prometheus-alerts.yaml strictly as a
// PrometheusRule's spec.
func alertsSpec(t *testing.T) monitoringv1.PrometheusRuleSpec {
	t.Helper()
	data, err := os.ReadFile("../prometheus-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec monitoringv1.PrometheusRuleSpec
	if err := DecodeYAMLStrict(data, &spec); err != nil {
		t.Fatalf("prometheus-alerts.yaml: %v", err)
	}
	if len(spec.Groups) == 0 {
		t.Fatalf("prometheus-alerts.yaml has no groups")
	}
	return spec
}

// checkRulesMatch asserts that a PrometheusRule carries exactly the rules
// of deploy/prometheus-alerts.yaml.
func checkRulesMatch(t *testing.T, pr *monitoringv1.PrometheusRule) {
	t.Helper()
	if d := rulesDiff(alertsSpec(t), pr); d != "" {
		t.Error(d)
	}
}

// rulesDiff says how pr's rules differ from want, or "" when they do not.
func rulesDiff(want monitoringv1.PrometheusRuleSpec, pr *monitoringv1.PrometheusRule) string {
	w, _ := json.MarshalIndent(want, "", " ")
	g, _ := json.MarshalIndent(pr.Spec, "", " ")
	if string(g) == string(w) {
		return ""
	}
	return fmt.Sprintf("PrometheusRule %s differs from deploy/prometheus-alerts.yaml:\n got %s\nwant %s", pr.Name, g, w)
}

func deref[T any](p *T) any {
	if p == nil {
		return "<unset>"
	}
	return *p
}

func TestDeploymentManifest(t *testing.T) {
	objs := append(decodeFile(t, "../kubernetes/deployment.yaml"), decodeFile(t, "../kubernetes/networkpolicy.yaml")...)
	objs = append(objs, decodeFile(t, "../kubernetes/monitoring.yaml")...)
	if n := len(all[corev1.Secret](objs)); n != 1 {
		t.Errorf("%d Secrets, want the example one", n)
	}
	checkReplicas(t, objs, replicaSet{replicas: 3, networkPolicy: true, monitoring: true})
}

func TestSidecarManifest(t *testing.T) {
	objs := decodeFile(t, "../kubernetes/sidecar.yaml")
	d := one[appsv1.Deployment](t, objs)
	c := finproxyContainer(t, d, true)
	checkPod(t, objs, d, c)
	checkSecrets(t, objs)
	if n := len(all[corev1.Secret](objs)); n != 1 {
		t.Errorf("%d Secrets, want the example one", n)
	}
	selects(t, "Deployment selector", d.Spec.Selector, d.Spec.Template.Labels)
	if env := envOf(c); !strings.HasPrefix(env["FINPROXY_LISTEN_ADDR"], "127.0.0.1:") {
		t.Errorf("sidecar FINPROXY_LISTEN_ADDR = %q, want loopback only", env["FINPROXY_LISTEN_ADDR"])
	}
	if c.StartupProbe == nil || c.StartupProbe.HTTPGet == nil || c.StartupProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("sidecar startupProbe must be /readyz: the app starts once finproxy is ready")
	}
}

// TestDecodeIsStrict shows that the decoding refuses what kubectl's strict
// validation refuses, so that the manifest tests can fail.
func TestDecodeIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 3}\n",
		"wrong type":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: three}\n",
		"duplicate key":  "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"unknown kind":   "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		"no name":        "apiVersion: v1\nkind: Secret\nmetadata: {}\n",
		"unknown in CRD": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoint: []}\n",
		"probe field":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          readinessProbe: {httpGet: {path: /readyz, prot: admin}}\n",
	} {
		if _, err := Decode([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	objs, err := Decode([]byte("# only a comment\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {a: b}\n"))
	if err != nil || len(objs) != 1 || objs[0].Kind != "v1/Secret" {
		t.Errorf("Decode = %v, %v; want one Secret", objs, err)
	}
}
