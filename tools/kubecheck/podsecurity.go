package main

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// restricted is the level every pod is held to: the one a namespace
// labelled pod-security.kubernetes.io/enforce=restricted admits.
var restricted = psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}

var evaluator = func() policy.Evaluator {
	e, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		panic(err)
	}
	return e
}()

// podTemplate returns the pod metadata and spec an object creates pods
// from, if it does.
func podTemplate(obj runtime.Object) (*metav1.ObjectMeta, *corev1.PodSpec, bool) {
	switch v := obj.(type) {
	case *corev1.Pod:
		return &v.ObjectMeta, &v.Spec, true
	case *corev1.PodTemplate:
		return &v.Template.ObjectMeta, &v.Template.Spec, true
	case *corev1.ReplicationController:
		if v.Spec.Template == nil {
			return nil, nil, false
		}
		return &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec, true
	case *appsv1.Deployment:
		return &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec, true
	case *appsv1.StatefulSet:
		return &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec, true
	case *appsv1.DaemonSet:
		return &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec, true
	case *appsv1.ReplicaSet:
		return &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec, true
	case *batchv1.Job:
		return &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec, true
	case *batchv1.CronJob:
		return &v.Spec.JobTemplate.Spec.Template.ObjectMeta, &v.Spec.JobTemplate.Spec.Template.Spec, true
	}
	return nil, nil, false
}

func checkPodSecurity(o object) []error {
	meta, spec, ok := podTemplate(o.obj)
	if !ok {
		return nil
	}
	res := policy.AggregateCheckResults(evaluator.EvaluatePod(restricted, meta, spec))
	if res.Allowed {
		return nil
	}
	return []error{fmt.Errorf("%s: violates the Pod Security Standard %q: %s", o, restricted.Level, res.ForbiddenDetail())}
}
