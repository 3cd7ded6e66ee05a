#!/usr/bin/env python3
"""Tests of infra/sinatra.yaml, infra/Pulumi.yaml and scripts/aws/.

usage: test_infra.py --list | CASE

Cases:
  template_lints_clean       cfn-lint reports nothing (run anywhere).
  template_parts_moto_skips  checks of the parsed template for what moto
                             5.2.1 cannot create (run anywhere).
  pulumi_program_matches     checks of the parsed Pulumi program.
  scripts_reject_bad_settings  the scripts in scripts/aws/ stop with one
                             line on a bad setting, before any AWS call.
  stack_deploys_to_moto      deploys the template to moto, checks the
                             resources through the API, runs the Lambda
                             end-to-end test against them when it can, and
                             tears everything down. Runs under
                             tests/aws/with_moto.sh.

What is checked which way:

  deployed to moto, checked through the API (AWS CLI):
    job queue and dead-letter queue (visibility timeout, long polling,
    redrive policy), state table (key schema, billing mode), both
    functions (runtime, memory, timeout, reserved concurrency,
    environment), event source mapping
    (queue, batch size, ReportBatchItemFailures), invoke permission for
    S3, IAM role (trust policy, every statement's resources), log groups
    (retention), both buckets (encryption),
    stack outputs, and the scripts that upload, print and tear down.
  checked in the parsed template only, because moto 5.2.1's CloudFormation
  does not create them:
    bucket policies (TLS only, CloudFront's origin access control),
    the CloudFront distribution, origin access control, cache and
    response headers policies, the bucket notification to the
    orchestrator, and the HlsCdnUrl output. Also the settings moto
    drops: the state table's point-in-time recovery, the functions'
    architecture and /tmp size, and the buckets' public access block,
    object ownership and CORS.

Exits 0 on success, 1 on a failed check, 77 when a tool is missing.
"""

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "infra", "sinatra.yaml")
PULUMI = os.path.join(ROOT, "infra", "Pulumi.yaml")
SCRIPTS = os.path.join(ROOT, "scripts", "aws")
E2E_TEST = os.path.join(ROOT, "tests", "lambda", "test_lambda_e2e.py")
SKIPPED = 77

# Resource types moto 5.2.1's CloudFormation skips ("No Moto
# CloudFormation support"). The reduced template leaves them out.
MOTO_UNSUPPORTED_TYPES = {
    "AWS::S3::BucketPolicy",
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::CachePolicy",
    "AWS::CloudFront::ResponseHeadersPolicy",
}
# Properties moto accepts but does not apply, removed as well.
MOTO_IGNORED_PROPERTIES = {
    ("AWS::S3::Bucket", "NotificationConfiguration"),
}

# The seven outputs under the names the Pulumi program exports.
OUTPUT_NAMES = {
    "videos_bucket_name": "VideosBucketName",
    "hls_bucket_name": "HlsBucketName",
    "hls_cdn_url": "HlsCdnUrl",
    "job_queue_url": "JobQueueUrl",
    "video_state_table_name": "VideoStateTableName",
    "orchestrator_lambda_arn": "OrchestratorLambdaArn",
    "worker_lambda_arn": "WorkerLambdaArn",
}

# The environment variables the functions read.
FUNCTION_ENVIRONMENT = {
    "SINATRA_VIDEOS_BUCKET", "SINATRA_HLS_BUCKET", "SINATRA_JOB_QUEUE_URL",
    "SINATRA_STATE_TABLE", "SINATRA_RUNGS", "SINATRA_SEGMENT_FORMAT",
    "SINATRA_SEGMENT_DURATION", "SINATRA_KEYFRAME_INTERVAL",
    "SINATRA_CHUNK_SEGMENTS", "SINATRA_FIRST_CHUNK_SEGMENTS",
    "SINATRA_PRESET", "SINATRA_CRF", "SINATRA_MAX_RECEIVES",
}

# The actions the C code calls (src/store/store_s3.c, src/queue/
# queue_sqs.c, src/state/state_dynamodb.c) plus what Lambda's SQS event
# source and logging need, by the kind of resource they apply to.
EXPECTED_ACTIONS = {
    "logs": {"logs:CreateLogStream", "logs:PutLogEvents"},
    "objects": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
    "buckets": {"s3:ListBucket"},
    "queue": {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
              "sqs:GetQueueAttributes"},
    "table": {"dynamodb:GetItem", "dynamodb:PutItem",
              "dynamodb:UpdateItem"},
}


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_equal(actual, expected, what):
    if actual != expected:
        raise CheckFailed("%s: expected %r, got %r" % (what, expected,
                                                       actual))


# ---- the template, parsed -------------------------------------------------

class TemplateLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation's short tags (!Ref, !Sub,
    !GetAtt ...) into the JSON form ({"Ref": ...}, {"Fn::Sub": ...})."""


def _construct_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + suffix: value}


TemplateLoader.add_multi_constructor("!", _construct_tag)


def load_template():
    with open(TEMPLATE, encoding="utf-8") as f:
        return yaml.load(f, Loader=TemplateLoader)


def sub_names(text):
    """Returns the names inside ${...} of an Fn::Sub string."""
    names, start = set(), 0
    while True:
        start = text.find("${", start)
        if start < 0:
            return names
        end = text.index("}", start)
        name = text[start + 2:end]
        if not name.startswith("!"):
            names.add(name.split(".")[0])
        start = end + 1


def references(value):
    """Returns every logical name value refers to (Ref, Fn::GetAtt,
    Fn::Sub), pseudo parameters and template parameters included."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found |= sub_names(text)
                if not isinstance(inner, str):
                    found |= references(inner[1])
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def reduced_template(template):
    """Returns the template without what moto cannot create: the resource
    types above, the properties it ignores, DependsOn entries and outputs
    that name a removed resource. Fails if a kept resource refers to a
    removed one, because then moto's stack would not be the real one."""
    reduced = json.loads(json.dumps(template))
    resources = reduced["Resources"]
    removed = {name for name, resource in resources.items()
               if resource["Type"] in MOTO_UNSUPPORTED_TYPES}
    for name in removed:
        del resources[name]

    for name, resource in resources.items():
        for rtype, prop in MOTO_IGNORED_PROPERTIES:
            if resource["Type"] == rtype:
                resource.get("Properties", {}).pop(prop, None)
        depends = resource.get("DependsOn")
        if isinstance(depends, str):
            depends = [depends]
        if depends is not None:
            resource["DependsOn"] = [d for d in depends if d not in removed]
        dangling = references(resource) & removed
        check(not dangling, "reduced template: resource %s refers to %s, "
              "which moto cannot create" % (name, sorted(dangling)))

    reduced["Outputs"] = {
        name: output for name, output in reduced["Outputs"].items()
        if not references(output) & removed}
    return reduced, removed


# ---- case: template_lints_clean ------------------------------------------

def case_template_lints_clean():
    cfn_lint = shutil.which("cfn-lint")
    if cfn_lint is None:
        print("cfn-lint not found: skipped")
        return SKIPPED
    # Informational findings (I...) are included, so anything cfn-lint
    # has to say shows up.
    result = subprocess.run([cfn_lint, "--include-checks", "I", "--",
                             TEMPLATE], capture_output=True, text=True)
    print(result.stdout + result.stderr, end="")
    check_equal(result.returncode, 0, "cfn-lint exit status")
    check_equal(result.stdout.strip(), "", "cfn-lint output")
    return 0


# ---- case: template_parts_moto_skips -------------------------------------

def resources_of_type(template, rtype):
    return {name: r for name, r in template["Resources"].items()
            if r["Type"] == rtype}


def check_tls_only(policy, bucket):
    """The policy denies every S3 action without TLS on bucket and its
    objects."""
    for statement in policy["PolicyDocument"]["Statement"]:
        if statement.get("Sid") != "DenyInsecureTransport":
            continue
        check_equal(statement["Effect"], "Deny", bucket + " TLS statement")
        check_equal(statement["Principal"], "*", bucket + " TLS principal")
        check_equal(statement["Action"], "s3:*", bucket + " TLS action")
        check_equal(statement["Condition"],
                    {"Bool": {"aws:SecureTransport": "false"}},
                    bucket + " TLS condition")
        check_equal(statement["Resource"], [
            {"Fn::GetAtt": [bucket, "Arn"]},
            {"Fn::Sub": "${%s.Arn}/*" % bucket}], bucket + " TLS resources")
        return
    raise CheckFailed("bucket policy of %s has no DenyInsecureTransport "
                      "statement" % bucket)


def check_bucket_policies(template):
    policies = resources_of_type(template, "AWS::S3::BucketPolicy")
    by_bucket = {p["Properties"]["Bucket"]["Ref"]: p["Properties"]
                 for p in policies.values()}
    check_equal(sorted(by_bucket), ["HlsBucket", "VideosBucket"],
                "buckets with a policy")
    for bucket, policy in by_bucket.items():
        check_tls_only(policy, bucket)

    statements = {s.get("Sid"): s for s in
                  by_bucket["HlsBucket"]["PolicyDocument"]["Statement"]}
    oac = statements.get("AllowCloudFrontOriginAccessControl")
    check(oac is not None, "HLS bucket policy: no statement for CloudFront")
    check_equal(oac["Principal"], {"Service": "cloudfront.amazonaws.com"},
                "CloudFront statement principal")
    check_equal(oac["Action"], "s3:GetObject", "CloudFront statement action")
    check_equal(oac["Resource"], {"Fn::Sub": "${HlsBucket.Arn}/*"},
                "CloudFront statement resource")
    source = oac["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    check(source.endswith(":distribution/${HlsDistribution}"),
          "CloudFront statement: SourceArn %r is not the distribution's "
          "ARN" % source)


def check_distribution(template):
    dist = template["Resources"]["HlsDistribution"]["Properties"][
        "DistributionConfig"]
    origins = dist["Origins"]
    check_equal(len(origins), 1, "number of CloudFront origins")
    check_equal(origins[0]["DomainName"],
                {"Fn::GetAtt": ["HlsBucket", "RegionalDomainName"]},
                "CloudFront origin")
    check_equal(origins[0]["OriginAccessControlId"],
                {"Fn::GetAtt": ["HlsOriginAccessControl", "Id"]},
                "CloudFront origin access control")
    check_equal(origins[0]["S3OriginConfig"], {"OriginAccessIdentity": ""},
                "legacy origin access identity")

    oac = template["Resources"]["HlsOriginAccessControl"]["Properties"][
        "OriginAccessControlConfig"]
    check_equal((oac["OriginAccessControlOriginType"],
                 oac["SigningBehavior"], oac["SigningProtocol"]),
                ("s3", "always", "sigv4"), "origin access control")

    behaviors = [dist["DefaultCacheBehavior"]] + dist["CacheBehaviors"]
    for behavior in behaviors:
        check_equal(behavior["ViewerProtocolPolicy"], "https-only",
                    "viewer protocol of %s" % behavior.get("PathPattern",
                                                           "default"))
        check_equal(behavior["ResponseHeadersPolicyId"],
                    {"Ref": "HlsResponseHeaders"}, "CORS headers policy")
    playlists = [b for b in dist["CacheBehaviors"]
                 if b["PathPattern"] == "*.m3u8"]
    check_equal(len(playlists), 1, "cache behaviors for *.m3u8")
    check_equal(playlists[0]["Compress"], True, "playlist compression")
    check_equal(playlists[0]["CachePolicyId"], {"Ref": "PlaylistCachePolicy"},
                "playlist cache policy")
    check_equal(dist["DefaultCacheBehavior"]["CachePolicyId"],
                {"Ref": "SegmentCachePolicy"}, "default cache policy")

    def config(name):
        return template["Resources"][name]["Properties"]["CachePolicyConfig"]

    # Playlists change every few seconds while a video is processed.
    check(config("PlaylistCachePolicy")["MaxTTL"] <= 2,
          "playlists may be cached for more than 2 s")
    check(config("PlaylistCachePolicy")["ParametersInCacheKeyAndForwarded"
                                        "ToOrigin"]["EnableAcceptEncodingGzip"],
          "playlist cache policy does not accept gzip")
    check(config("SegmentCachePolicy")["MaxTTL"] >= 31536000,
          "segments are not kept for a year")

    cors = template["Resources"]["HlsResponseHeaders"]["Properties"][
        "ResponseHeadersPolicyConfig"]["CorsConfig"]
    check_equal(cors["AccessControlAllowOrigins"], {"Items": ["*"]},
                "CloudFront CORS origins")
    check("GET" in cors["AccessControlAllowMethods"]["Items"],
          "CloudFront CORS does not allow GET")

    url = template["Outputs"]["HlsCdnUrl"]["Value"]
    check_equal(url, {"Fn::Sub": "https://${HlsDistribution.DomainName}"},
                "HlsCdnUrl output")


def check_notification(template):
    resources = template["Resources"]
    bucket = resources["VideosBucket"]
    configs = bucket["Properties"]["NotificationConfiguration"][
        "LambdaConfigurations"]
    check_equal(len(configs), 1, "notifications of the videos bucket")
    check_equal(configs[0]["Event"], "s3:ObjectCreated:*",
                "notification event")
    check_equal(configs[0]["Function"],
                {"Fn::GetAtt": ["OrchestratorFunction", "Arn"]},
                "notification target")
    check_equal(configs[0]["Filter"]["S3Key"]["Rules"],
                [{"Name": "prefix", "Value": "stream/"}],
                "notification filter")
    # S3 tests the permission when the notification is saved.
    check_equal(bucket["DependsOn"], "OrchestratorInvokePermission",
                "VideosBucket DependsOn")
    permission = resources["OrchestratorInvokePermission"]["Properties"]
    check_equal(permission["SourceArn"],
                {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Prefix}-videos"},
                "invoke permission SourceArn")
    # The bucket's name and everything the function depends on are built
    # from Prefix: a reference to VideosBucket would be a cycle.
    check_equal(bucket["Properties"]["BucketName"],
                {"Fn::Sub": "${Prefix}-videos"}, "videos bucket name")
    for name in ("OrchestratorFunction", "LambdaRole",
                 "OrchestratorInvokePermission", "WorkerFunction"):
        check("VideosBucket" not in references(resources[name]),
              "%s refers to VideosBucket (a dependency cycle)" % name)


def check_visibility_mapping(template):
    # moto deploys one WorkerTimeout; every allowed one is checked here.
    allowed = template["Parameters"]["WorkerTimeout"]["AllowedValues"]
    mapping = template["Mappings"]["WorkerTimeoutToVisibility"]
    check_equal(sorted(mapping, key=int), allowed,
                "WorkerTimeoutToVisibility keys")
    for text in allowed:
        timeout = int(text)
        visibility = mapping[text]["VisibilityTimeout"]
        check(visibility >= 6 * timeout and visibility <= 43200,
              "worker timeout %d s: visibility timeout %d s is not 6x "
              "to 12 h" % (timeout, visibility))


def check_function_settings(template):
    """The function properties moto 5.2.1's CloudFormation drops."""
    for name in ("OrchestratorFunction", "WorkerFunction"):
        props = template["Resources"][name]["Properties"]
        check_equal(props["Architectures"], [{"Ref": "Architecture"}],
                    name + " Architectures")
    worker = template["Resources"]["WorkerFunction"]["Properties"]
    check_equal(worker["EphemeralStorage"],
                {"Size": {"Ref": "WorkerEphemeralStorageSize"}},
                "worker EphemeralStorage")
    check_equal(template["Parameters"]["Architecture"]["AllowedValues"],
                ["x86_64", "arm64"], "Architecture values")


def check_bucket_settings(template):
    """The bucket properties moto 5.2.1's CloudFormation drops (it applies
    only BucketEncryption): public access block, ownership, CORS."""
    for name in ("VideosBucket", "HlsBucket"):
        props = template["Resources"][name]["Properties"]
        check_equal(props["PublicAccessBlockConfiguration"], {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            name + " public access block")
        check_equal(props["OwnershipControls"]["Rules"],
                    [{"ObjectOwnership": "BucketOwnerEnforced"}],
                    name + " object ownership")
    cors = template["Resources"]["HlsBucket"]["Properties"][
        "CorsConfiguration"]["CorsRules"]
    check_equal(len(cors), 1, "HLS bucket CORS rules")
    check_equal(sorted(cors[0]["AllowedMethods"]), ["GET", "HEAD"],
                "HLS bucket CORS methods")
    check_equal(cors[0]["AllowedOrigins"], ["*"], "HLS bucket CORS origins")


def check_table_backups(template):
    table = template["Resources"]["VideoStateTable"]["Properties"]
    check_equal(table["PointInTimeRecoverySpecification"],
                {"PointInTimeRecoveryEnabled": True},
                "point-in-time recovery")


def case_template_parts_moto_skips():
    template = load_template()
    check_table_backups(template)
    check_function_settings(template)
    check_bucket_settings(template)
    check_bucket_policies(template)
    check_distribution(template)
    check_notification(template)
    check_visibility_mapping(template)

    # The reduced template must leave out exactly the parts above.
    reduced, removed = reduced_template(template)
    check_equal(sorted(removed), sorted(
        name for name, r in template["Resources"].items()
        if r["Type"] in MOTO_UNSUPPORTED_TYPES), "removed resources")
    check_equal(sorted(set(template["Outputs"]) - set(reduced["Outputs"])),
                ["HlsCdnUrl"], "outputs left out of the reduced template")
    return 0


# ---- case: scripts_reject_bad_settings -----------------------------------

def case_scripts_reject_bad_settings():
    """Each script stops with one line naming the bad setting before it
    calls AWS. The endpoint is a closed loopback port, so a script that
    did call AWS would fail with a different message."""
    base = dict(os.environ, AWS_ENDPOINT_URL="http://127.0.0.1:9",
                AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
                AWS_SECRET_ACCESS_KEY="not-a-secret")
    cases = [
        ("outputs.sh", [], {"SINATRA_PREFIX": "Bad_Prefix"},
         "SINATRA_PREFIX is 'Bad_Prefix'"),
        ("teardown.sh", [], {"SINATRA_PREFIX": "a"}, "SINATRA_PREFIX is 'a'"),
        ("outputs.sh", [], {"SINATRA_PREFIX": "123"},
         "SINATRA_PREFIX is '123'"),
        ("outputs.sh", [], {"SINATRA_PREFIX": "xn--abc"},
         "SINATRA_PREFIX is 'xn--abc'"),
        ("upload-video.sh", ["/nonexistent/clip.mp4"], {},
         "/nonexistent/clip.mp4: no such file"),
        ("deploy.sh", ["WorkerMemorySize"], {},
         "invalid parameter override: WorkerMemorySize"),
        ("status.sh", [], {}, "usage: status.sh NAME"),
        ("upload-code.sh", [], {"SINATRA_ARCH": "sparc"},
         "SINATRA_ARCH is sparc"),
    ]
    for name, args, env, expected in cases:
        result = subprocess.run([os.path.join(SCRIPTS, name)] + args,
                                env=dict(base, **env), capture_output=True,
                                text=True, timeout=60)
        lines = result.stderr.strip().splitlines()
        check(result.returncode != 0, "%s %s exited 0" % (name, args))
        check(len(lines) == 1, "%s printed %d lines: %s"
              % (name, len(lines), result.stderr.strip()))
        check(expected in result.stderr, "%s printed %r, expected %r"
              % (name, result.stderr.strip(), expected))
    return 0


# ---- case: pulumi_program_matches ----------------------------------------

def case_pulumi_program_matches():
    with open(PULUMI, encoding="utf-8") as f:
        program = yaml.safe_load(f)
    template = load_template()

    check_equal(program["runtime"], "yaml", "Pulumi runtime")
    resources = program["resources"]
    check_equal(list(resources), ["stack"], "Pulumi resources")
    stack = resources["stack"]
    check_equal(stack["type"], "aws:cloudformation:Stack",
                "Pulumi resource type")
    props = stack["properties"]
    path = props["templateBody"]["fn::readFile"]
    # fn::readFile rejects paths outside the project folder.
    check(not path.startswith("/") and ".." not in path.split("/"),
          "fn::readFile path %r leaves the project folder" % path)
    resolved = os.path.normpath(os.path.join(os.path.dirname(PULUMI), path))
    check_equal(resolved, TEMPLATE, "template read by the Pulumi program")
    check("CAPABILITY_NAMED_IAM" in props["capabilities"],
          "Pulumi stack lacks CAPABILITY_NAMED_IAM")

    # Every template parameter is passed from a config value of the same
    # name (first letter in lower case) whose default is the template's.
    config = program["config"]
    parameters = template["Parameters"]
    check_equal(sorted(props["parameters"]), sorted(parameters),
                "parameters passed by the Pulumi program")
    for name, value in props["parameters"].items():
        key = name[0].lower() + name[1:]
        check_equal(value, "${%s}" % key, "Pulumi parameter " + name)
        check(key in config, "Pulumi config %s is not declared" % key)
        check_equal(str(config[key]["default"]),
                    str(parameters[name]["Default"]),
                    "default of Pulumi config " + key)

    expected = {name: '${stack.outputs["%s"]}' % output
                for name, output in OUTPUT_NAMES.items()}
    check_equal(program["outputs"], expected, "Pulumi outputs")
    check_equal(sorted(OUTPUT_NAMES.values()), sorted(template["Outputs"]),
                "template outputs")
    return 0


# ---- case: stack_deploys_to_moto -----------------------------------------

class Aws:
    """Runs the AWS CLI against AWS_ENDPOINT_URL and parses its JSON."""

    def __init__(self, endpoint, region):
        self.endpoint = endpoint
        self.region = region

    def run(self, *args, check_status=True):
        command = ["aws", "--endpoint-url", self.endpoint, "--region",
                   self.region, "--output", "json"] + list(args)
        result = subprocess.run(command, capture_output=True, text=True)
        if check_status and result.returncode != 0:
            raise CheckFailed("%s failed (%d): %s" % (
                " ".join(args[:2]), result.returncode, result.stderr.strip()))
        return result

    def __call__(self, *args):
        if args[0] == "lambda" and args[1].startswith(("get-", "list-")):
            self.skip_next_signature_check()
        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else {}

    def skip_next_signature_check(self):
        """Lets the next request through without a signature check.

        moto 5.2.1 checks the signature of a Lambda GET request as if the
        request's headers were its body, so every signed Lambda read fails
        with SignatureDoesNotMatch. /moto-api/reset-auth with 1 lets one
        request through unchecked; checking resumes after it."""
        request = urllib.request.Request(
            self.endpoint + "/moto-api/reset-auth", data=b"1", method="POST",
            headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            check_equal(response.status, 200, "moto reset-auth status")

    def fails(self, *args):
        return self.run(*args, check_status=False).returncode != 0


def run_script(name, *args, env):
    result = subprocess.run([os.path.join(SCRIPTS, name)] + list(args),
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise CheckFailed("scripts/aws/%s failed (%d): %s%s" % (
            name, result.returncode, result.stdout, result.stderr))
    return result.stdout


def write_code(folder):
    """Puts the two zips in folder: the built ones from target/lambda when
    both exist, else small zips with a bootstrap (moto stores the code
    but never runs it). Returns which was used."""
    built = os.path.join(ROOT, "target", "lambda")
    names = ("aws_orchestrator.zip", "aws_worker.zip")
    if all(os.path.isfile(os.path.join(built, n)) for n in names):
        for name in names:
            shutil.copy(os.path.join(built, name), folder)
        return "target/lambda"
    for name in names:
        with zipfile.ZipFile(os.path.join(folder, name), "w") as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o755 << 16
            z.writestr(info, "#!/bin/sh\necho 'not a real function' >&2\n"
                             "exit 1\n")
    return "generated placeholder zips"


# Non-default values, so the checks show that parameters reach resources.
DEPLOY_PARAMETERS = {
    "Architecture": "arm64",
    "WorkerMemorySize": "2048",
    "WorkerTimeout": "120",
    "WorkerEphemeralStorageSize": "4096",
    "WorkerReservedConcurrency": "5",
    "WorkerBatchSize": "2",
    "MaxReceives": "4",
    "LogRetentionDays": "14",
    "Rungs": "360,720",
    "SegmentFormat": "ts",
    "Crf": "23",
}


def deploy(aws, template, stack, prefix, deploy_bucket, work):
    reduced, _ = reduced_template(template)
    path = os.path.join(work, "reduced.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(reduced, f, indent=1)

    parameters = dict(DEPLOY_PARAMETERS, Prefix=prefix,
                      DeployBucket=deploy_bucket)
    # create-stack, not scripts/aws/deploy.sh: moto returns no outputs
    # on the change-set path that aws cloudformation deploy takes.
    aws("cloudformation", "create-stack", "--stack-name", stack,
        "--template-body", "file://" + path,
        "--capabilities", "CAPABILITY_NAMED_IAM", "--parameters",
        *["ParameterKey=%s,ParameterValue=%s" % (k, v.replace(",", "\\,"))
          for k, v in parameters.items()])
    aws.run("cloudformation", "wait", "stack-create-complete",
            "--stack-name", stack)
    status = aws("cloudformation", "describe-stacks", "--stack-name",
                 stack)["Stacks"][0]["StackStatus"]
    check_equal(status, "CREATE_COMPLETE", "stack status")


def stack_outputs(aws, stack):
    described = aws("cloudformation", "describe-stacks", "--stack-name",
                    stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"]
            for o in described.get("Outputs", [])}


def check_queues(aws, outputs, prefix):
    url = outputs["JobQueueUrl"]
    attributes = aws("sqs", "get-queue-attributes", "--queue-url", url,
                     "--attribute-names", "All")["Attributes"]
    check_equal(attributes["VisibilityTimeout"], "720",
                "visibility timeout for a 120 s worker")
    check_equal(attributes["ReceiveMessageWaitTimeSeconds"], "20",
                "long polling wait")
    redrive = json.loads(attributes["RedrivePolicy"])
    check_equal(int(redrive["maxReceiveCount"]), 4, "maxReceiveCount")
    dead_url = aws("sqs", "get-queue-url", "--queue-name",
                   prefix + "-jobs-dlq")["QueueUrl"]
    dead = aws("sqs", "get-queue-attributes", "--queue-url", dead_url,
               "--attribute-names", "QueueArn")["Attributes"]
    check_equal(redrive["deadLetterTargetArn"], dead["QueueArn"],
                "dead-letter target")
    return attributes["QueueArn"]


def check_table(aws, outputs, prefix):
    name = outputs["VideoStateTableName"]
    check_equal(name, prefix + "-video-state", "table name")
    table = aws("dynamodb", "describe-table", "--table-name", name)["Table"]
    check_equal(table["KeySchema"],
                [{"AttributeName": "id", "KeyType": "HASH"}], "key schema")
    check_equal(table["AttributeDefinitions"],
                [{"AttributeName": "id", "AttributeType": "S"}],
                "attribute definitions")
    check_equal(table["BillingModeSummary"]["BillingMode"],
                "PAY_PER_REQUEST", "billing mode")
    # moto 5.2.1's CloudFormation leaves point-in-time recovery off
    # (describe-continuous-backups returns DISABLED), so
    # check_table_backups checks the template instead.
    return table["TableArn"]


def check_functions(aws, outputs, prefix):
    environments = {}
    for role in ("orchestrator", "worker"):
        name = "%s-%s" % (prefix, role)
        config = aws("lambda", "get-function-configuration",
                     "--function-name", name)
        check_equal(config["Runtime"], "provided.al2023", name + " runtime")
        check_equal(config["Role"].split("/")[-1], prefix + "-lambda-role",
                    name + " role")
        # moto keeps a Number parameter's value as an integer where AWS
        # passes a string, so values are compared as strings.
        environments[role] = {k: str(v) for k, v in
                              config["Environment"]["Variables"].items()}
        check_equal(set(environments[role]), FUNCTION_ENVIRONMENT,
                    name + " environment variables")
        if role == "worker":
            check_equal(config["MemorySize"], 2048, name + " memory")
            check_equal(config["Timeout"], 120, name + " timeout")
            concurrency = aws("lambda", "get-function-concurrency",
                              "--function-name", name)
            check_equal(concurrency.get("ReservedConcurrentExecutions"), 5,
                        name + " reserved concurrency")
            check_equal(config["FunctionArn"], outputs["WorkerLambdaArn"],
                        "WorkerLambdaArn output")
        else:
            check_equal(config["MemorySize"], 1024, name + " memory")
            check_equal(config["Timeout"], 120, name + " timeout")
            check_equal(config["FunctionArn"],
                        outputs["OrchestratorLambdaArn"],
                        "OrchestratorLambdaArn output")

    check_equal(environments["worker"], environments["orchestrator"],
                "worker environment against the orchestrator's")
    env = environments["worker"]
    check_equal(env["SINATRA_VIDEOS_BUCKET"], prefix + "-videos",
                "SINATRA_VIDEOS_BUCKET")
    check_equal(env["SINATRA_HLS_BUCKET"], outputs["HlsBucketName"],
                "SINATRA_HLS_BUCKET")
    check_equal(env["SINATRA_JOB_QUEUE_URL"], outputs["JobQueueUrl"],
                "SINATRA_JOB_QUEUE_URL")
    check_equal(env["SINATRA_STATE_TABLE"], outputs["VideoStateTableName"],
                "SINATRA_STATE_TABLE")
    check_equal(env["SINATRA_MAX_RECEIVES"], "4",
                "SINATRA_MAX_RECEIVES (the redrive policy's maxReceiveCount)")
    check_equal(env["SINATRA_RUNGS"], "360,720", "SINATRA_RUNGS")
    check_equal(env["SINATRA_SEGMENT_FORMAT"], "ts", "SINATRA_SEGMENT_FORMAT")
    check_equal(env["SINATRA_CRF"], "23", "SINATRA_CRF")
    check_equal(env["SINATRA_SEGMENT_DURATION"], "6",
                "SINATRA_SEGMENT_DURATION")


def check_event_source(aws, outputs, queue_arn):
    # All mappings, filtered here: moto 5.2.1 filters --function-name by
    # the exact text the mapping was created with.
    mappings = aws("lambda", "list-event-source-mappings")[
        "EventSourceMappings"]
    check_equal([m["FunctionArn"] for m in mappings],
                [outputs["WorkerLambdaArn"]], "functions with a mapping")
    mapping = mappings[0]
    check_equal(mapping["EventSourceArn"], queue_arn, "mapping queue")
    check_equal(mapping["BatchSize"], 2, "mapping batch size")
    check_equal(mapping.get("FunctionResponseTypes"),
                ["ReportBatchItemFailures"], "mapping response types")


def check_invoke_permission(aws, outputs, prefix):
    policy = json.loads(aws("lambda", "get-policy", "--function-name",
                            outputs["OrchestratorLambdaArn"])["Policy"])
    statements = policy["Statement"]
    check_equal(len(statements), 1, "orchestrator permissions")
    statement = statements[0]
    check_equal(statement["Principal"], {"Service": "s3.amazonaws.com"},
                "invoke permission principal")
    check_equal(statement["Action"], "lambda:InvokeFunction",
                "invoke permission action")
    arn_like = statement["Condition"]["ArnLike"]["AWS:SourceArn"]
    check_equal(arn_like, "arn:aws:s3:::%s-videos" % prefix,
                "invoke permission source bucket")


def statement_kind(resource, prefix, queue_arn, table_arn):
    """Names the kind of a statement's resource ARN, or None when it is
    not one of this stack's resources."""
    kinds = {
        "arn:aws:s3:::%s-videos/*" % prefix: "objects",
        "arn:aws:s3:::%s-hls/*" % prefix: "objects",
        "arn:aws:s3:::%s-videos" % prefix: "buckets",
        "arn:aws:s3:::%s-hls" % prefix: "buckets",
        queue_arn: "queue",
        table_arn: "table",
    }
    if resource in kinds:
        return kinds[resource]
    for role in ("orchestrator", "worker"):
        # Log streams of one log group; logs ARNs end in ":*" for them.
        if resource.startswith("arn:aws:logs:") and resource.endswith(
                ":log-group:/aws/lambda/%s-%s:*" % (prefix, role)):
            return "logs"
    return None


def parse_policy(text):
    """Parses a policy document that the CLI returned as text. moto 5.2.1's
    CloudFormation stores an inline policy as Python's repr of the
    document, with single quotes, where AWS returns JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def check_role(aws, prefix, queue_arn, table_arn):
    name = prefix + "-lambda-role"
    role = aws("iam", "get-role", "--role-name", name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = parse_policy(trust)
    check_equal([s["Principal"] for s in trust["Statement"]],
                [{"Service": "lambda.amazonaws.com"}], "role trust")
    check_equal(aws("iam", "list-attached-role-policies", "--role-name",
                    name)["AttachedPolicies"], [], "managed policies")

    granted = {}
    policies = aws("iam", "list-role-policies", "--role-name",
                   name)["PolicyNames"]
    check_equal(len(policies), 1, "inline policies of the role")
    for policy_name in policies:
        document = aws("iam", "get-role-policy", "--role-name", name,
                       "--policy-name", policy_name)["PolicyDocument"]
        if isinstance(document, str):
            document = parse_policy(document)
        for statement in document["Statement"]:
            sid = statement.get("Sid", "?")
            check_equal(statement["Effect"], "Allow", sid + " effect")
            actions = statement["Action"]
            actions = {actions} if isinstance(actions, str) else set(actions)
            resources = statement["Resource"]
            if isinstance(resources, str):
                resources = [resources]
            # No statement may grant on "*": every one of these actions
            # takes a resource ARN, so AWS requires no wildcard here.
            for resource in resources:
                check(resource != "*", "statement %s grants on *" % sid)
                kind = statement_kind(resource, prefix, queue_arn, table_arn)
                check(kind is not None, "statement %s names %s, which is "
                      "not a resource of this stack" % (sid, resource))
                check(actions <= EXPECTED_ACTIONS[kind], "statement %s "
                      "grants %s on %s" % (sid, sorted(
                          actions - EXPECTED_ACTIONS[kind]), resource))
                granted.setdefault(kind, set()).update(actions)
    for kind, actions in EXPECTED_ACTIONS.items():
        check_equal(granted.get(kind, set()), actions,
                    "actions granted on the " + kind)


def check_log_groups(aws, prefix):
    groups = aws("logs", "describe-log-groups", "--log-group-name-prefix",
                 "/aws/lambda/%s-" % prefix)["logGroups"]
    by_name = {g["logGroupName"]: g for g in groups}
    for role in ("orchestrator", "worker"):
        name = "/aws/lambda/%s-%s" % (prefix, role)
        check(name in by_name, "log group %s missing" % name)
        check_equal(by_name[name].get("retentionInDays"), 14,
                    name + " retention")


def check_buckets(aws, outputs, prefix):
    for key, bucket in (("VideosBucketName", prefix + "-videos"),
                        ("HlsBucketName", prefix + "-hls")):
        check_equal(outputs[key], bucket, key + " output")
        rules = aws("s3api", "get-bucket-encryption", "--bucket", bucket)[
            "ServerSideEncryptionConfiguration"]["Rules"]
        check_equal(rules[0]["ApplyServerSideEncryptionByDefault"]
                    ["SSEAlgorithm"], "AES256", bucket + " encryption")


def check_outputs_script(outputs, env):
    """scripts/aws/outputs.sh prints the snake_case names and --env the
    variables the functions read."""
    printed = run_script("outputs.sh", env=env)
    lines = dict(line.split(" = ", 1) for line in printed.splitlines())
    expected = {snake: outputs[key] for snake, key in OUTPUT_NAMES.items()
                if key in outputs}
    check_equal(lines, expected, "outputs.sh")
    assignments = run_script("outputs.sh", "--env", env=env)
    variables = dict(line.split("=", 1) for line in assignments.splitlines())
    check_equal(variables["SINATRA_JOB_QUEUE_URL"], outputs["JobQueueUrl"],
                "outputs.sh --env queue URL")
    check_equal(len(variables), 4, "variables printed by outputs.sh --env")


def run_lambda_e2e(aws, outputs, env):
    """Runs tests/lambda/test_lambda_e2e.py against the deployed names,
    when it and the built sinatra-lambda exist. Returns a one-line
    status."""
    build = os.environ.get("SN_BUILD_DIR", os.path.join(ROOT, "build"))
    binary = os.path.join(build, "sinatra-lambda")
    if not os.path.isfile(E2E_TEST) or not os.access(binary, os.X_OK):
        return "Lambda end-to-end test not run: %s or %s is missing" % (
            os.path.relpath(E2E_TEST, ROOT), binary)
    # moto would run the worker for the stack's event source mapping in
    # Docker, inside the request that sends a job. The test plays the SQS
    # trigger instead, so the mapping is turned off first.
    for mapping in aws("lambda", "list-event-source-mappings")[
            "EventSourceMappings"]:
        aws("lambda", "update-event-source-mapping", "--uuid",
            mapping["UUID"], "--no-enabled")
    e2e_env = dict(env,
                   SN_LAMBDA_BINARY=binary,
                   SINATRA_VIDEOS_BUCKET=outputs["VideosBucketName"],
                   SINATRA_HLS_BUCKET=outputs["HlsBucketName"],
                   SINATRA_JOB_QUEUE_URL=outputs["JobQueueUrl"],
                   SINATRA_STATE_TABLE=outputs["VideoStateTableName"])
    # moto's CloudFormation does not apply the bucket's notification, which
    # goes to the orchestrator function, not to a queue. So the end-to-end
    # test makes a notification queue of its own and plays the S3 trigger.
    result = subprocess.run([sys.executable, E2E_TEST,
                             "uploads_become_ready_hls_in_s3"],
                            env=e2e_env, capture_output=True, text=True)
    print(result.stdout + result.stderr, end="")
    if result.returncode == SKIPPED:
        return "Lambda end-to-end test skipped itself"
    check_equal(result.returncode, 0, "tests/lambda/test_lambda_e2e.py "
                "exit status")
    # status.sh finds a video the functions made ready, by its upload name.
    status = run_script("status.sh", "bear clip.mp4", env=env)
    check(": ready, generation 1" in status,
          "status.sh of a ready video printed: %s" % status)
    check("master playlist: s3://%s/" % outputs["HlsBucketName"] in status,
          "status.sh names no master playlist: %s" % status)
    missing = subprocess.run([os.path.join(SCRIPTS, "status.sh"),
                              "never uploaded.mp4"], env=env,
                             capture_output=True, text=True)
    check(missing.returncode != 0, "status.sh of a name never uploaded "
          "exited 0: %s" % missing.stdout.strip())
    check("not found" in missing.stderr, "status.sh of a name never "
          "uploaded printed: %s" % missing.stderr.strip())
    return "Lambda end-to-end test passed against the deployed stack"


def check_nothing_left(aws, prefix, deploy_bucket, stack):
    functions = aws("lambda", "list-functions")["Functions"]
    check_equal([f["FunctionName"] for f in functions
                 if f["FunctionName"].startswith(prefix)], [],
                "functions left")
    check_equal(aws("lambda", "list-event-source-mappings").get(
        "EventSourceMappings", []), [], "event source mappings left")
    queues = aws("sqs", "list-queues", "--queue-name-prefix", prefix)
    check_equal(queues.get("QueueUrls", []), [], "queues left")
    tables = aws("dynamodb", "list-tables")["TableNames"]
    check_equal([t for t in tables if t.startswith(prefix)], [],
                "tables left")
    check(aws.fails("iam", "get-role", "--role-name", prefix + "-lambda-role"),
          "role %s-lambda-role left" % prefix)
    groups = aws("logs", "describe-log-groups", "--log-group-name-prefix",
                 "/aws/lambda/" + prefix)["logGroups"]
    check_equal([g["logGroupName"] for g in groups], [], "log groups left")
    buckets = aws("s3api", "list-buckets").get("Buckets", [])
    check_equal([b["Name"] for b in buckets
                 if b["Name"].startswith(prefix) or b["Name"] ==
                 deploy_bucket], [], "buckets left")
    stacks = aws("cloudformation", "list-stacks")["StackSummaries"]
    live = [s["StackName"] for s in stacks if s["StackName"] == stack and
            s["StackStatus"] != "DELETE_COMPLETE"]
    check_equal(live, [], "stacks left")


def case_stack_deploys_to_moto():
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint.startswith("http://127.0.0.1:"):
        print("AWS_ENDPOINT_URL is not a loopback moto server (run under "
              "tests/aws/with_moto.sh): skipped")
        return SKIPPED
    if shutil.which("aws") is None:
        print("the aws command (AWS CLI) was not found: skipped")
        return SKIPPED

    aws = Aws(endpoint, os.environ.get("AWS_REGION", "us-east-1"))
    template = load_template()
    prefix = "sn-test-" + uuid.uuid4().hex[:8]
    deploy_bucket = prefix + "-deploy"
    work = tempfile.mkdtemp(prefix="sn-infra-")
    env = dict(os.environ, SINATRA_PREFIX=prefix,
               SINATRA_DEPLOY_BUCKET=deploy_bucket, SINATRA_ARCH="arm64",
               SINATRA_LAMBDA_DIR=work, AWS_EC2_METADATA_DISABLED="true")
    started = time.monotonic()
    try:
        print("code: %s" % write_code(work))
        run_script("upload-code.sh", "--no-build", env=env)
        deploy(aws, template, prefix, prefix, deploy_bucket, work)
        print("deployed in %.1f s" % (time.monotonic() - started))

        outputs = stack_outputs(aws, prefix)
        reduced, _ = reduced_template(template)
        check_equal(sorted(outputs), sorted(reduced["Outputs"]),
                    "stack outputs")
        queue_arn = check_queues(aws, outputs, prefix)
        table_arn = check_table(aws, outputs, prefix)
        check_functions(aws, outputs, prefix)
        check_event_source(aws, outputs, queue_arn)
        check_invoke_permission(aws, outputs, prefix)
        check_role(aws, prefix, queue_arn, table_arn)
        check_log_groups(aws, prefix)
        check_buckets(aws, outputs, prefix)
        check_outputs_script(outputs, env)

        # Objects in both buckets, so teardown has something to empty.
        clip = os.path.join(work, "clip.mp4")
        with open(clip, "wb") as f:
            f.write(b"\0" * 1024)
        run_script("upload-video.sh", clip, "my clip.mp4", env=env)
        aws("s3api", "put-object", "--bucket", prefix + "-hls", "--key",
            "v/master.m3u8", "--body", clip)
        listed = aws("s3api", "list-objects-v2", "--bucket",
                     prefix + "-videos")["Contents"]
        check_equal([o["Key"] for o in listed], ["stream/my clip.mp4"],
                    "uploaded video")

        print(run_lambda_e2e(aws, outputs, env))

        run_script("teardown.sh", "--delete-deploy-bucket", env=env)
        check_nothing_left(aws, prefix, deploy_bucket, prefix)
        print("deployed, checked and torn down in %.1f s"
              % (time.monotonic() - started))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


CASES = {
    "template_lints_clean": case_template_lints_clean,
    "template_parts_moto_skips": case_template_parts_moto_skips,
    "pulumi_program_matches": case_pulumi_program_matches,
    "scripts_reject_bad_settings": case_scripts_reject_bad_settings,
    "stack_deploys_to_moto": case_stack_deploys_to_moto,
}


def main():
    if len(sys.argv) != 2:
        print("usage: test_infra.py --list | CASE", file=sys.stderr)
        return 2
    if sys.argv[1] == "--list":
        print("\n".join(CASES))
        return 0
    case = CASES.get(sys.argv[1])
    if case is None:
        print("test_infra.py: unknown case %s" % sys.argv[1],
              file=sys.stderr)
        return 2
    try:
        return case()
    except CheckFailed as e:
        print("FAILED: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
