package config

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The parts of Kubernetes objects the example's wiring depends on.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"` // ConfigMap
	Spec struct {
		Selector yaml.Node `yaml:"selector"` // Deployment: matchLabels; Service: labels
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"` // Service
	} `yaml:"spec"`
}

type k8sPodSpec struct {
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  k8sProbe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// port resolves a probe's or Service's port, a number or a port name.
func (c k8sContainer) port(p string) int {
	for _, cp := range c.Ports {
		if cp.Name == p {
			return cp.ContainerPort
		}
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestKubernetesExample keeps examples/kubernetes working: every YAML
// document parses, each gateway.yaml in a ConfigMap passes Parse, and
// the pod is wired to it: the gateway container reads the mounted
// ConfigMap, its ports are the config's listener and health listener,
// the probes ask /readyz and /healthz there, and the Service sends its
// traffic to the listener.
func TestKubernetesExample(t *testing.T) {
	// The replicas' Secret gives the Redis password through the environment.
	t.Setenv("REDIS_PASSWORD", "example")
	files, err := filepath.Glob("../examples/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("got %v, %v; want the example manifests", files, err)
	}
	configMaps := map[string]map[string]string{}
	var deployments, services []k8sObject
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			var o k8sObject
			if err == nil {
				err = doc.Decode(&o)
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: document %d: got apiVersion %q, kind %q, name %q; want all three", f, i, o.APIVersion, o.Kind, o.Metadata.Name)
			}
			switch o.Kind {
			case "ConfigMap":
				configMaps[o.Metadata.Name] = o.Data
				if src, ok := o.Data["gateway.yaml"]; ok {
					if _, err := Parse(f, []byte(src)); err != nil {
						t.Errorf("gateway.yaml of ConfigMap %s:\n%v", o.Metadata.Name, inFile(err, &doc))
					}
				}
			case "Deployment":
				deployments = append(deployments, o)
			case "Service":
				services = append(services, o)
			}
		}
	}
	if len(deployments) == 0 || len(services) == 0 {
		t.Fatalf("got %d deployments and %d services; want both", len(deployments), len(services))
	}

	gateways := 0
	for _, d := range deployments {
		var sel struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		}
		if err := d.Spec.Selector.Decode(&sel); err != nil || len(sel.MatchLabels) == 0 {
			t.Errorf("deployment %s: selector.matchLabels: %v; want labels", d.Metadata.Name, err)
		}
		for k, v := range sel.MatchLabels {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("deployment %s selects %s=%s; its pod template does not have it", d.Metadata.Name, k, v)
			}
		}
		pod := d.Spec.Template.Spec
		for _, c := range pod.Containers {
			i := slices.Index(c.Args, "-config")
			if i < 0 || i+1 >= len(c.Args) {
				continue
			}
			gateways++
			cfg := mountedConfig(t, c, pod, configMaps, c.Args[i+1])
			if cfg == nil {
				continue
			}
			listen := addrPort(t, cfg.Listeners[0].Address)
			if c.port("http") != listen {
				t.Errorf("container %s: port http is %d; want the listener's %d", c.Name, c.port("http"), listen)
			}
			if cfg.Admin.HealthAddress == "" {
				t.Errorf("container %s: no admin.health_address for the probes", c.Name)
				continue
			}
			health := addrPort(t, cfg.Admin.HealthAddress)
			for _, p := range []struct {
				name, path, want string
				port             string
			}{
				{"readiness", c.ReadinessProbe.HTTPGet.Path, "/readyz", c.ReadinessProbe.HTTPGet.Port},
				{"liveness", c.LivenessProbe.HTTPGet.Path, "/healthz", c.LivenessProbe.HTTPGet.Port},
			} {
				if p.path != p.want || c.port(p.port) != health {
					t.Errorf("container %s: %s probe on %s port %d; want %s on the health listener's %d", c.Name, p.name, p.path, c.port(p.port), p.want, health)
				}
			}
			served := false
			for _, s := range services {
				var sel map[string]string
				if err := s.Spec.Selector.Decode(&sel); err != nil {
					t.Fatalf("service %s selector: %v", s.Metadata.Name, err)
				}
				if !selects(sel, d.Spec.Template.Metadata.Labels) {
					continue // another Deployment's Service (Redis, another example)
				}
				served = true
				for _, sp := range s.Spec.Ports {
					if c.port(sp.TargetPort) != listen {
						t.Errorf("service %s port %d targets %s (%d); want the gateway's listener %d", s.Metadata.Name, sp.Port, sp.TargetPort, c.port(sp.TargetPort), listen)
					}
				}
			}
			if !served {
				t.Errorf("deployment %s: no Service selects its pods", d.Metadata.Name)
			}
		}
	}
	if gateways == 0 {
		t.Error("no container runs the gateway with -config")
	}
}

// selects reports whether a Service selector sel picks pods labelled labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetesReplicasExample: the gateway.yaml of
// gateway-replicas.yaml loads, and its shared cache tier is wired to the
// manifest: each address is the Redis Service's name and port, and the
// password variable it names is set on the gateway container from a
// Secret that the Redis container reads too.
func TestKubernetesReplicasExample(t *testing.T) {
	// The replicas' Secret gives the Redis password through the environment.
	t.Setenv("REDIS_PASSWORD", "example")
	const file = "../examples/kubernetes/gateway-replicas.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type envVar struct {
		Name      string `yaml:"name"`
		ValueFrom struct {
			SecretKeyRef struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	type object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
		Spec struct {
			Replicas int `yaml:"replicas"`
			Template struct {
				Spec struct {
					Containers []struct {
						Name  string   `yaml:"name"`
						Image string   `yaml:"image"`
						Args  []string `yaml:"args"`
						Env   []envVar `yaml:"env"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
			Ports []struct {
				Port int `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	var src string
	var doc yaml.Node
	services := map[string][]int{}
	secrets := map[string]bool{}
	secretEnv := map[string]string{} // container/VAR -> secret/key
	gatewayReplicas := 0
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := n.Decode(&o); err != nil {
			t.Fatal(err)
		}
		switch o.Kind {
		case "ConfigMap":
			if s, ok := o.Data["gateway.yaml"]; ok {
				src, doc = s, n
			}
		case "Secret":
			secrets[o.Metadata.Name] = true
		case "Service":
			for _, p := range o.Spec.Ports {
				services[o.Metadata.Name] = append(services[o.Metadata.Name], p.Port)
			}
		case "Deployment":
			for _, c := range o.Spec.Template.Spec.Containers {
				if slices.Contains(c.Args, "-config") {
					gatewayReplicas = o.Spec.Replicas
				}
				for _, e := range c.Env {
					if r := e.ValueFrom.SecretKeyRef; r.Name != "" {
						secretEnv[c.Name+"/"+e.Name] = r.Name + "/" + r.Key
					}
				}
			}
		}
	}
	if src == "" {
		t.Fatal("no ConfigMap with a gateway.yaml")
	}
	if gatewayReplicas < 2 {
		t.Errorf("the gateway Deployment has %d replicas; want several", gatewayReplicas)
	}

	// The file as the gateway loads it.
	if _, err := Parse(file, []byte(src)); err != nil {
		t.Errorf("gateway.yaml of %s:\n%v", file, inFile(err, &doc))
	}

	// The wiring, read from the YAML itself.
	var g struct {
		Cache struct {
			Shared struct {
				Addresses   []string `yaml:"addresses"`
				PasswordEnv string   `yaml:"password_env"`
			} `yaml:"shared"`
		} `yaml:"cache"`
	}
	if err := yaml.Unmarshal([]byte(src), &g); err != nil {
		t.Fatal(err)
	}
	sh := g.Cache.Shared
	if len(sh.Addresses) == 0 {
		t.Fatal("gateway.yaml has no cache.shared.addresses")
	}
	for _, a := range sh.Addresses {
		u, err := url.Parse(a)
		if err != nil || u.Scheme != "redis" {
			t.Errorf("address %q: want redis://SERVICE:PORT", a)
			continue
		}
		port, _ := strconv.Atoi(u.Port())
		if !slices.Contains(services[u.Hostname()], port) {
			t.Errorf("address %q: no Service %s with port %d in the manifest", a, u.Hostname(), port)
		}
	}
	if sh.PasswordEnv == "" {
		t.Fatal("cache.shared has no password_env")
	}
	ref, ok := secretEnv["gateway/"+sh.PasswordEnv]
	if !ok {
		t.Fatalf("container gateway does not set %s from a Secret", sh.PasswordEnv)
	}
	if name, _, _ := strings.Cut(ref, "/"); !secrets[name] {
		t.Errorf("%s comes from Secret %s, which the manifest does not define", sh.PasswordEnv, name)
	}
	if redis := secretEnv["redis/REDIS_PASSWORD"]; redis != ref {
		t.Errorf("redis reads its password from %q, the gateway from %q; want the same", redis, ref)
	}
}

// mountedConfig parses the config file that container c reads, from the
// ConfigMap mounted at the file's directory.
func mountedConfig(t *testing.T, c k8sContainer, pod k8sPodSpec, configMaps map[string]map[string]string, file string) *Config {
	t.Helper()
	dir, key := path.Split(file)
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != path.Clean(dir) {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			src, ok := configMaps[v.ConfigMap.Name][key]
			if !ok {
				t.Errorf("container %s: ConfigMap %q has no key %q", c.Name, v.ConfigMap.Name, key)
				return nil
			}
			cfg, err := Parse(file, []byte(src))
			if err != nil {
				return nil // reported with the ConfigMap
			}
			return cfg
		}
	}
	t.Errorf("container %s: nothing mounted at %s for -config %s", c.Name, dir, file)
	return nil
}

// inFile moves the lines of Parse's errors about data["gateway.yaml"]
// of the ConfigMap doc from the embedded file to the manifest.
func inFile(err error, doc *yaml.Node) error {
	var es Errors
	if !errors.As(err, &es) {
		return err
	}
	offset := 0
	if n := mapValue(mapValue(doc.Content[0], "data"), "gateway.yaml"); n != nil {
		offset = n.Line // the line of "|"; the text starts on the next
	}
	for _, e := range es {
		if e.Line > 0 {
			e.Line += offset
		}
	}
	return es
}

// mapValue is the value of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("address %q: want host:port", addr)
	}
	return n
}
