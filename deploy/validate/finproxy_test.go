package validate

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// finproxyBinary builds finproxy from the repository once per run.
func finproxyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "finproxy-validate")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "finproxy")
		cmd := exec.Command("go", "build", "-o", binary, ".")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building finproxy: %v", buildErr)
	}
	return binary
}

// edited stands for the values a platform team puts in place of each
// REPLACE_ME placeholder, by Secret key or variable.
var edited = map[string]string{
	"client-id":                "edited-client",
	"client-secret":            "edited-client-secret",
	"identity-secret":          "edited-identity-secret-0123456789abcdef0123456789",
	"redis-url":                "redis://:edited-password@redis:6379/0",
	"FINPROXY_TRUSTED_PROXIES": "10.244.3.0/24",
}

// check runs `finproxy --check` with the container's environment, its
// Secret mounts laid out under a temporary directory (the *_FILE paths moved
// there), every REPLACE_ME value replaced by its edited value when edit is
// set. It returns the exit code and the output.
func check(t *testing.T, objs []Object, d *appsv1.Deployment, c *corev1.Container, edit bool) (int, string) {
	t.Helper()
	root := t.TempDir()
	secrets := map[string]*corev1.Secret{}
	for _, s := range all[corev1.Secret](objs) {
		secrets[s.Name] = s
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
		if v.Secret == nil || secrets[v.Secret.SecretName] == nil {
			continue
		}
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for k, val := range secrets[v.Secret.SecretName].StringData {
			if edit && strings.Contains(val, placeholder) {
				val = edited[k]
			}
			if err := os.WriteFile(filepath.Join(dir, k), []byte(val+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	var env []string
	for k, v := range envOf(c) {
		if strings.HasSuffix(k, "_FILE") {
			v = filepath.Join(root, v)
		}
		if edit && strings.Contains(v, placeholder) {
			v = edited[k]
		}
		env = append(env, k+"="+v)
	}
	return run(t, env)
}

func run(t *testing.T, env []string) (int, string) {
	t.Helper()
	cmd := exec.Command(finproxyBinary(t), "--check")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestManifestsConfigureFinproxy feeds each manifest's environment and
// Secret files to the real binary's --check: with the placeholders edited
// finproxy accepts the configuration; unedited it refuses to start, naming
// FINPROXY_TRUSTED_PROXIES and (where the build has the guard) the secrets.
func TestManifestsConfigureFinproxy(t *testing.T) {
	deployment := append(decodeFile(t, "../kubernetes/deployment.yaml"), decodeFile(t, "../kubernetes/networkpolicy.yaml")...)
	chart, _ := render(t, "")
	sidecar := decodeFile(t, "../kubernetes/sidecar.yaml")
	for _, tc := range []struct {
		name    string
		objs    []Object
		sidecar bool
	}{
		{"deployment.yaml", deployment, false},
		{"helm chart", chart, false},
		{"sidecar.yaml", sidecar, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := one[appsv1.Deployment](t, tc.objs)
			c := finproxyContainer(t, d, tc.sidecar)
			if code, out := check(t, tc.objs, d, c, true); code != 0 {
				t.Errorf("edited: finproxy --check exit %d:\n%s", code, out)
			}
			// Unedited, finproxy refuses the REPLACE_ME secrets (and the
			// Deployment's trusted-proxies placeholder), naming each.
			code, out := check(t, tc.objs, d, c, false)
			want := []string{"CLIENT_SECRET", "IDENTITY_SECRET"}
			if !tc.sidecar {
				want = append(want, "FINPROXY_TRUSTED_PROXIES")
			}
			if code != 2 {
				t.Errorf("unedited: finproxy --check exit %d, want 2:\n%s", code, out)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("unedited: finproxy --check does not name %s:\n%s", w, out)
				}
			}
		})
	}
}

// TestComposeConfiguresFinproxy: the compose demo's environment is one
// finproxy accepts.
func TestComposeConfiguresFinproxy(t *testing.T) {
	p, err := loadCompose(t, composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for k, v := range p.Services["finproxy"].Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	if code, out := run(t, env); code != 0 {
		t.Errorf("finproxy --check with the compose environment: exit %d:\n%s", code, out)
	}
}
