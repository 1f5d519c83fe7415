package validate

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

const composeFile = "../compose/compose.yaml"

// loadCompose loads a compose file as `docker compose config` does,
// validating it against the compose specification's schema (unknown keys
// are errors).
func loadCompose(t *testing.T, file string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: types.Mapping{},
	}
	return loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("finproxy-demo", true)
		o.ResolvePaths = true
	})
}

func TestComposeRefusesUnknownKeys(t *testing.T) {
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "    read_only: true\n", "    read_only: true\n    readonly: true\n", 1)
	if bad == string(data) {
		t.Fatal("compose.yaml has no read_only line to misspell")
	}
	file := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCompose(t, file); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("a misspelt key loaded: err = %v", err)
	}
}

func TestCompose(t *testing.T) {
	p, err := loadCompose(t, composeFile)
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	counted(composeFile, "compose project")
	root, _ := filepath.Abs("../..")

	names := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	})
	if want := []string{"finapi-emulator", "finproxy", "grafana", "prometheus", "redis"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}

	// Built from this repository: the contexts and Dockerfiles exist.
	for _, name := range []string{"finproxy", "finapi-emulator"} {
		b := p.Services[name].Build
		if b == nil {
			t.Errorf("%s: not built from the repository", name)
			continue
		}
		if b.Context != root {
			t.Errorf("%s: build context %s, want the repository root %s", name, b.Context, root)
		}
		if _, err := os.Stat(filepath.Join(b.Context, b.Dockerfile)); err != nil {
			t.Errorf("%s: Dockerfile: %v", name, err)
		}
	}

	published := map[string][]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			published[name] = append(published[name], port.Published+":"+strconv.Itoa(int(port.Target)))
			// A demo with published secrets and Grafana's admin/admin:
			// this machine only, as make demo binds loopback only.
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes port %s on %q, want 127.0.0.1 only", name, port.Published, port.HostIP)
			}
		}
	}
	for name, want := range map[string][]string{
		"finproxy":   {"8080:8080", "9090:9090"},
		"prometheus": {"9091:9090"},
		"grafana":    {"3000:3000"},
	} {
		for _, w := range want {
			if !slices.Contains(published[name], w) {
				t.Errorf("%s publishes %v, want %s", name, published[name], w)
			}
		}
	}

	fp := p.Services["finproxy"]
	env := func(k string) string {
		if v := fp.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	for k, want := range map[string]string{
		"FINPROXY_DEMO":            "true",
		"FINPROXY_CLIENT_ID":       "demo-client",
		"FINPROXY_CLIENT_SECRET":   "demo-secret",
		"FINPROXY_IDENTITY_SECRET": "demo-identity-secret-not-for-production-use",
		"FINPROXY_STORE":           "redis",
		"FINPROXY_ADMIN_ADDR":      ":9090",
	} {
		if got := env(k); got != want {
			t.Errorf("finproxy %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"FINPROXY_ACCESS_URL", "FINPROXY_PROCESSCTL_URL", "FINPROXY_REDIS_URL"} {
		u, err := url.Parse(env(k))
		if err != nil || p.Services[u.Hostname()].Name == "" {
			t.Errorf("finproxy %s = %q does not name a service of the file", k, env(k))
		}
	}
	if fp.User != "65532:65532" || !fp.ReadOnly {
		t.Errorf("finproxy user %q read_only %v, want 65532:65532 and read-only", fp.User, fp.ReadOnly)
	}

	// Every mounted file exists; keep where each lands.
	mounted := map[string]map[string]string{} // service → target → source
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			st, err := os.Stat(v.Source)
			if err != nil {
				t.Errorf("%s mounts %s: %v", name, v.Source, err)
				continue
			}
			if st.IsDir() {
				t.Errorf("%s mounts the directory %s; mount files", name, v.Source)
			}
			if !v.ReadOnly {
				t.Errorf("%s mounts %s writable", name, v.Source)
			}
			if mounted[name] == nil {
				mounted[name] = map[string]string{}
			}
			mounted[name][v.Target] = v.Source
		}
	}
	checkComposePrometheus(t, mounted["prometheus"], p.Services["prometheus"].Command)
	checkComposeGrafana(t, mounted["grafana"])
}

// checkComposePrometheus lays out the files mounted into the Prometheus
// container as they land there, checks them with promtool and asserts a
// scrape of finproxy's admin port as job "finproxy".
func checkComposePrometheus(t *testing.T, files map[string]string, command []string) {
	t.Helper()
	const config = "/etc/prometheus/prometheus.yml"
	if !slices.Contains(command, "--config.file="+config) {
		t.Errorf("prometheus command %v does not load %s", command, config)
	}
	dir := t.TempDir()
	for target, source := range files {
		data, err := os.ReadFile(source)
		if err != nil {
			t.Fatal(err)
		}
		if path.Dir(target) != path.Dir(config) {
			t.Errorf("prometheus: %s mounted outside %s", target, path.Dir(config))
		}
		if err := os.WriteFile(filepath.Join(dir, path.Base(target)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("promtool", "check", "config", filepath.Join(dir, path.Base(config))).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	counted(files[config], "prometheus config")
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, path.Base(config)))
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if sc.JobName == "finproxy" && slices.Contains(st.Targets, "finproxy:9090") {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("prometheus.yml does not scrape finproxy:9090 as job finproxy")
	}
}

// checkComposeGrafana asserts the provisioned data source and dashboard.
func checkComposeGrafana(t *testing.T, files map[string]string) {
	t.Helper()
	const prov = "/etc/grafana/provisioning/"
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Type      string `json:"type"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
			Editable  bool   `json:"editable"`
		} `json:"datasources"`
	}
	var dash struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name            string `json:"name"`
			Folder          string `json:"folder"`
			Type            string `json:"type"`
			DisableDeletion bool   `json:"disableDeletion"`
			AllowUIUpdates  bool   `json:"allowUiUpdates"`
			Options         struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	read := func(target string, v any) {
		t.Helper()
		src, ok := files[target]
		if !ok {
			t.Fatalf("grafana: nothing mounted at %s (mounted: %v)", target, files)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := DecodeYAMLStrict(data, v); err != nil {
			t.Fatalf("grafana %s: %v", target, err)
		}
		counted(src, "grafana provisioning")
	}
	read(prov+"datasources/prometheus.yaml", &ds)
	read(prov+"dashboards/finproxy.yaml", &dash)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" || !ds.Datasources[0].IsDefault {
		t.Errorf("grafana data sources %+v, want the default prometheus at http://prometheus:9090", ds.Datasources)
	}
	if len(dash.Providers) != 1 || dash.Providers[0].Type != "file" {
		t.Fatalf("grafana dashboard providers %+v, want one of type file", dash.Providers)
	}
	dir := dash.Providers[0].Options.Path
	var dashboards int
	for target, src := range files {
		if path.Dir(target) != dir {
			continue
		}
		var d struct {
			UID    string `json:"uid"`
			Panels []any  `json:"panels"`
		}
		data, _ := os.ReadFile(src)
		if err := json.Unmarshal(data, &d); err != nil || d.UID == "" || len(d.Panels) == 0 {
			t.Errorf("grafana dashboard %s: %v (uid %q, %d panels)", src, err, d.UID, len(d.Panels))
		}
		if filepath.Base(src) != "grafana-dashboard.json" {
			t.Errorf("grafana dashboard %s is not deploy/grafana-dashboard.json", src)
		}
		dashboards++
		counted(src, "grafana dashboard")
	}
	if dashboards != 1 {
		t.Errorf("%d dashboards mounted in %s, want deploy/grafana-dashboard.json", dashboards, dir)
	}
}
