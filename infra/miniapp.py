"""Serving the Mini App in AWS (CONTRACT §9): a private bucket behind CloudFront.

One distribution gives the app and the API one origin:

* ``/app/*`` comes from a private S3 bucket that only this distribution may
  read (origin access control, a bucket policy naming the distribution);
  a CloudFront Function sends ``/`` and ``/app`` to ``/app/`` and answers
  every extension-less path under ``/app/`` with ``/app/index.html`` (the
  single-page app routes itself), so S3 errors never need rewriting, which
  would also rewrite the API's own 403s and 404s;
* ``/api/*`` goes to the API Gateway stage, never cached, with every viewer
  header but ``Host`` (API Gateway routes by its own host name).

The Mini App URL (the stack parameter ``MiniAppUrl`` if set, else
``https://<distribution>/app/``) reaches the functions through an SSM
parameter, not their environment: the API function cannot reference the
distribution, which references the API, whose definition references the
function (a dependency cycle).

``make deploy`` uploads ``webapp/dist`` to ``s3://<MiniAppBucketName>/app/``.
"""

from __future__ import annotations

from typing import Any

APP_PREFIX = "app/"  # the bucket's key prefix and the URL path of the app
BUCKET = "MiniAppBucket"
DISTRIBUTION = "MiniAppDistribution"

# AWS-managed CloudFront policies (ids are fixed by AWS, the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"

VIEWER_REQUEST_FUNCTION = """\
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri === '/' || uri === '/app') {
    return {statusCode: 302, statusDescription: 'Found', headers: {location: {value: '/app/'}}};
  }
  var last = uri.substring(uri.lastIndexOf('/') + 1);
  if (uri.indexOf('/app/') === 0 && last.indexOf('.') === -1) {
    request.uri = '/app/index.html';
  }
  return request;
}
"""


def parameters() -> dict[str, Any]:
    return {
        "MiniAppUrl": {
            "Type": "String",
            "Default": "",
            "Description": "URL the bot's Open button opens (empty: this stack's CloudFront URL, https://<domain>/app/).",
            "AllowedPattern": r"^$|^https://[A-Za-z0-9.-]+(:[0-9]+)?(/.*)?$",
        }
    }


def conditions() -> dict[str, Any]:
    return {"HasMiniAppUrl": {"Fn::Not": [{"Fn::Equals": [{"Ref": "MiniAppUrl"}, ""]}]}}


def distribution_url() -> dict[str, Any]:
    return {"Fn::Sub": f"https://${{{DISTRIBUTION}.DomainName}}/{APP_PREFIX}"}


def mini_app_url() -> dict[str, Any]:
    """The parameter when set, else the distribution's app URL."""
    return {"Fn::If": ["HasMiniAppUrl", {"Ref": "MiniAppUrl"}, distribution_url()]}


def mini_app_origin() -> dict[str, Any]:
    """``https://<host>`` of ``mini_app_url()``: what the API's CORS allows."""
    from_parameter = {"Fn::Join": ["", ["https://", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "MiniAppUrl"}]}]}]]}
    return {"Fn::If": ["HasMiniAppUrl", from_parameter, {"Fn::Sub": f"https://${{{DISTRIBUTION}.DomainName}}"}]}


def resources(*, api_stage: str, url_parameter_name: str) -> dict[str, Any]:
    private = {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    return {
        BUCKET: {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
                "PublicAccessBlockConfiguration": private,
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            },
        },
        "MiniAppBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": BUCKET},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "OnlyThisDistributionReads",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudfront.amazonaws.com"},
                            "Action": "s3:GetObject",
                            "Resource": {"Fn::Sub": f"${{{BUCKET}.Arn}}/{APP_PREFIX}*"},
                            "Condition": {
                                "StringEquals": {
                                    "AWS:SourceArn": {
                                        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}"
                                        f":distribution/${{{DISTRIBUTION}}}"
                                    }
                                }
                            },
                        }
                    ],
                },
            },
        },
        "MiniAppOriginAccessControl": {
            "Type": "AWS::CloudFront::OriginAccessControl",
            "Properties": {
                "OriginAccessControlConfig": {
                    "Name": {"Fn::Sub": "${AWS::StackName}-mini-app"},
                    "Description": "CloudFront signs its requests to the Mini App bucket",
                    "OriginAccessControlOriginType": "s3",
                    "SigningBehavior": "always",
                    "SigningProtocol": "sigv4",
                }
            },
        },
        "MiniAppPaths": {
            "Type": "AWS::CloudFront::Function",
            "Properties": {
                "Name": {"Fn::Sub": "${AWS::StackName}-mini-app-paths"},
                "AutoPublish": True,
                "FunctionCode": VIEWER_REQUEST_FUNCTION,
                "FunctionConfig": {
                    "Comment": "/ -> /app/; app routes -> /app/index.html",
                    "Runtime": "cloudfront-js-2.0",
                },
            },
        },
        DISTRIBUTION: {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {
                "DistributionConfig": {
                    "Comment": {"Fn::Sub": "NanoGen Mini App and API (${AWS::StackName})"},
                    "Enabled": True,
                    "HttpVersion": "http2and3",
                    "IPV6Enabled": True,
                    "PriceClass": "PriceClass_100",
                    "Origins": [
                        {
                            "Id": "MiniApp",
                            "DomainName": {"Fn::GetAtt": [BUCKET, "RegionalDomainName"]},
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                            "OriginAccessControlId": {"Fn::GetAtt": ["MiniAppOriginAccessControl", "Id"]},
                        },
                        {
                            "Id": "Api",
                            "DomainName": {"Fn::Sub": "${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"},
                            # /api/user/me -> the stage's /api/user/me (stage name, then the route).
                            "OriginPath": f"/{api_stage}",
                            "CustomOriginConfig": {
                                "OriginProtocolPolicy": "https-only",
                                "HTTPSPort": 443,
                                "OriginSSLProtocols": ["TLSv1.2"],
                            },
                        },
                    ],
                    "DefaultCacheBehavior": {
                        "TargetOriginId": "MiniApp",
                        "ViewerProtocolPolicy": "redirect-to-https",
                        "AllowedMethods": ["GET", "HEAD"],
                        "CachedMethods": ["GET", "HEAD"],
                        "Compress": True,
                        "CachePolicyId": CACHING_OPTIMIZED,
                        "FunctionAssociations": [
                            {
                                "EventType": "viewer-request",
                                "FunctionARN": {"Fn::GetAtt": ["MiniAppPaths", "FunctionARN"]},
                            }
                        ],
                    },
                    "CacheBehaviors": [
                        {
                            "PathPattern": "/api/*",
                            "TargetOriginId": "Api",
                            "ViewerProtocolPolicy": "https-only",
                            "AllowedMethods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
                            "CachedMethods": ["GET", "HEAD"],
                            "Compress": True,
                            "CachePolicyId": CACHING_DISABLED,
                            "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST_HEADER,
                        }
                    ],
                    "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
                }
            },
        },
        "MiniAppUrlParameter": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": url_parameter_name,
                "Type": "String",
                "Description": "MINI_APP_URL of the functions (set by the stack)",
                "Value": mini_app_url(),
            },
        },
    }


def outputs() -> dict[str, Any]:
    return {
        "MiniAppUrl": {"Description": "The Mini App served by this stack", "Value": distribution_url()},
        "MiniAppBucketName": {"Value": {"Ref": BUCKET}},
        "MiniAppDistributionId": {"Value": {"Ref": DISTRIBUTION}},
    }
