// Package validate checks finproxy's deployment artefacts (the Kubernetes
// manifests, the Helm chart, the compose file and the alert rules) by
// decoding them strictly into the types of the tools that consume them.
// It is a module of its own so that finproxy's binary module never depends
// on Kubernetes, Helm or compose.
package validate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// An Object is one decoded manifest document.
type Object struct {
	// Kind is apiVersion/kind, e.g. "apps/v1/Deployment".
	Kind string
	// Name is metadata.name.
	Name string
	// Value points to the typed object: *appsv1.Deployment, *corev1.Secret, …
	Value any
}

// kinds maps apiVersion/kind to a constructor of its Go type. A document of
// any other kind is an error: the manifests hold nothing unchecked.
var kinds = map[string]func() any{
	"v1/Secret":                          func() any { return new(corev1.Secret) },
	"v1/Service":                         func() any { return new(corev1.Service) },
	"v1/ConfigMap":                       func() any { return new(corev1.ConfigMap) },
	"apps/v1/Deployment":                 func() any { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget":      func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return new(networkingv1.NetworkPolicy) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any {
		return new(monitoringv1.ServiceMonitor)
	},
	"monitoring.coreos.com/v1/PrometheusRule": func() any {
		return new(monitoringv1.PrometheusRule)
	},
}

// Decode splits a multi-document YAML stream and decodes every non-empty
// document strictly into the type its apiVersion and kind name: an unknown
// or misspelt field, a duplicate key or a value of the wrong type is an
// error, as it would be for `kubectl apply --validate=strict`.
func Decode(data []byte) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("validate: document %d: %w", i, err)
		}
		obj, err := decodeOne(doc)
		if err != nil {
			return nil, fmt.Errorf("validate: document %d: %w", i, err)
		}
		if obj != nil {
			out = append(out, *obj)
		}
	}
}

func decodeOne(doc []byte) (*Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil // only comments
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, err
	}
	kind := tm.APIVersion + "/" + tm.Kind
	newValue, ok := kinds[kind]
	if !ok {
		return nil, fmt.Errorf("unexpected apiVersion/kind %q", kind)
	}
	v := newValue()
	if err := DecodeStrict(js, v); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	name := ""
	if m, ok := v.(metav1.Object); ok {
		name = m.GetName()
	}
	if name == "" {
		return nil, fmt.Errorf("%s without metadata.name", kind)
	}
	return &Object{Kind: kind, Name: name, Value: v}, nil
}

// DecodeStrict decodes one JSON document into v, refusing unknown fields
// and trailing data.
func DecodeStrict(js []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the document")
	}
	return nil
}

// DecodeYAMLStrict is DecodeStrict for one YAML document (duplicate keys
// are errors too).
func DecodeYAMLStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	return DecodeStrict(js, v)
}
