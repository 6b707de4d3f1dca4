import hashlib
import subprocess

import requests
import yaml


def run(cmd):
    return subprocess.call(cmd, shell=True)


def load(text):
    return yaml.load(text)


def digest(data):
    return hashlib.md5(data).hexdigest()


def fetch(url):
    return requests.get(url, verify=False)


def render(name):
    query = "SELECT * FROM users WHERE name = '%s'" % name
    return query


PASSWORD = "Xk9pQ2vLm7rT4w"


def cleanup(path):
    return subprocess.call("rm -rf " + path, shell=True)
