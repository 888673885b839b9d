#!/usr/bin/env python3
"""Renders a kustomization directory without kustomize, for machines that have neither
`kubectl` nor `kustomize`: prints the resources as one multi-document YAML stream.

Supports the parts k8s/kustomization.yaml uses, and fails loudly on any other field:
`resources` (files), `namespace`, `images` (newName / newTag / digest), and
`replacements` whose source and target field paths are dotted paths with list items
picked by `[key=value]` (as kustomize writes them). Output order: kustomize's legacy order
(Namespace, ConfigMap, Service, then workloads), by name within a kind.

Usage: render-kustomize.py DIR [> out.yaml]   (needs PyYAML)
"""

import copy
import os
import re
import sys

import yaml

SUPPORTED = {"apiVersion", "kind", "namespace", "resources", "images", "replacements"}
# Kinds that are not namespaced, among those a Cairn deployment could contain.
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                 "CustomResourceDefinition", "PriorityClass"}
# kustomize's legacy ordering: these kinds first, in this order; the rest after, by kind.
ORDER_FIRST = ["Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
               "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
               "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
               "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class RenderError(Exception):
    pass


def split_path(path):
    """'spec.template.spec.containers.[name=x].env' -> ['spec', ..., ('name', 'x'), 'env']."""
    parts = []
    for piece in re.findall(r"\[[^\]]*\]|[^.\[\]]+", path):
        if piece.startswith("["):
            key, sep, value = piece[1:-1].partition("=")
            if not sep:
                raise RenderError(f"unsupported path element {piece!r} in {path!r}")
            parts.append((key, value))
        else:
            parts.append(piece)
    return parts


def walk(node, parts, path):
    """Returns (parent, key) of the field at `parts`, failing if any step is missing."""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, tuple):
            if not isinstance(node, list):
                raise RenderError(f"{path}: expected a list before [{part[0]}={part[1]}]")
            hits = [j for j, item in enumerate(node) if isinstance(item, dict) and str(item.get(part[0])) == part[1]]
            if len(hits) != 1:
                raise RenderError(f"{path}: [{part[0]}={part[1]}] matches {len(hits)} items")
            if last:
                return node, hits[0]
            node = node[hits[0]]
        else:
            if isinstance(node, list) and part.isdigit():
                part = int(part)
            elif not isinstance(node, dict) or part not in node:
                raise RenderError(f"{path}: no field {part!r}")
            if last:
                return node, part
            node = node[part]
    raise RenderError(f"empty field path {path!r}")


def matches(res, select):
    meta = res.get("metadata", {})
    for key, want in select.items():
        have = res.get(key) if key in ("kind", "group", "version") else meta.get(key)
        if key not in ("kind", "name", "namespace"):
            raise RenderError(f"unsupported selector field {key!r}")
        if have != want:
            return False
    return True


def apply_replacements(resources, replacements):
    for rep in replacements:
        src = rep["source"]
        sources = [r for r in resources if matches(r, {k: v for k, v in src.items() if k in ("kind", "name")})]
        if len(sources) != 1:
            raise RenderError(f"replacement source {src} matches {len(sources)} resources")
        parent, key = walk(sources[0], split_path(src.get("fieldPath", "metadata.name")), src.get("fieldPath"))
        value = parent[key]
        for target in rep["targets"]:
            hits = [r for r in resources if matches(r, target["select"])]
            if not hits:
                raise RenderError(f"replacement target {target['select']} matches nothing")
            for res in hits:
                for fp in target["fieldPaths"]:
                    tparent, tkey = walk(res, split_path(fp), fp)
                    # Like kustomize: a scalar copied into a string field stays a string.
                    old = tparent[tkey]
                    tparent[tkey] = str(value) if isinstance(old, str) and not isinstance(value, str) else value


def set_images(resources, images):
    def fix(containers):
        for c in containers or []:
            image = c.get("image", "")
            name, tag = image.split("@", 1)[0], ""
            if ":" in name.rsplit("/", 1)[-1]:
                name, tag = name.rsplit(":", 1)
            for img in images:
                if name == img["name"]:
                    new = img.get("newName", name)
                    if "digest" in img:
                        c["image"] = f"{new}@{img['digest']}"
                    else:
                        new_tag = img.get("newTag", tag)
                        c["image"] = f"{new}:{new_tag}" if new_tag else new

    for res in resources:
        spec = res.get("spec", {})
        pod = spec.get("template", {}).get("spec", {}) if res["kind"] != "Pod" else spec
        fix(pod.get("containers"))
        fix(pod.get("initContainers"))


def order_key(res):
    kind, name = res["kind"], res["metadata"]["name"]
    if kind in ORDER_FIRST:
        return (0, ORDER_FIRST.index(kind), "", name)
    if kind in ORDER_LAST:
        return (2, ORDER_LAST.index(kind), "", name)
    return (1, 0, kind, name)


def render(directory):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        kz = yaml.safe_load(f)
    unknown = set(kz) - SUPPORTED
    if unknown:
        raise RenderError(f"kustomization fields not supported here: {sorted(unknown)}")
    resources = []
    for name in kz.get("resources", []):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise RenderError(f"resource {name!r} is not a file in {directory}")
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for d in docs:
            if not isinstance(d, dict) or "kind" not in d or "metadata" not in d:
                raise RenderError(f"{name}: a document without kind/metadata")
        resources.extend(docs)
    if "namespace" in kz:
        for res in resources:
            if res["kind"] not in CLUSTER_KINDS:
                res["metadata"]["namespace"] = kz["namespace"]
    set_images(resources, kz.get("images", []))
    apply_replacements(resources, kz.get("replacements", []))
    ids = [(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in resources]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise RenderError(f"resources defined twice: {sorted(map(str, dupes))}")
    return [copy.deepcopy(r) for r in sorted(resources, key=order_key)]


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        docs = render(argv[1])
    except (RenderError, KeyError, OSError, yaml.YAMLError) as e:
        print(f"render-kustomize: {e}", file=sys.stderr)
        return 1
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=True, default_flow_style=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
