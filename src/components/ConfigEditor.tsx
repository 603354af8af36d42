import React, { ChangeEvent, useState } from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { Field, Input, SecretInput, Stack } from '@grafana/ui';

import { RuleperfOptions, RuleperfSecureOptions } from '../types';

type Props = DataSourcePluginOptionsEditorProps<RuleperfOptions, RuleperfSecureOptions>;

/** Returns why a service URL cannot work, or undefined when it can. Empty is reported by "Save & test". */
export function validateServiceUrl(url: string): string | undefined {
  if (url.trim() === '') {
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return 'Enter a full URL such as http://ruleperf:8080';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return 'The URL must start with http:// or https://';
  }
  if (parsed.search || parsed.hash) {
    return 'Leave out ?query and #fragment: the plugin appends /api/v1/... itself';
  }
  return undefined;
}

/**
 * Trailing slashes are dropped because plugin.json's routes append "/api" and "/readyz"
 * to this URL, and "http://host//api" does not match the service's routes.
 */
export function normalizeServiceUrl(url: string): string {
  return url.trim().replace(/\/+$/, '');
}

type SecretKey = keyof RuleperfSecureOptions;

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields } = options;
  const secureJsonData = options.secureJsonData ?? {};
  const [urlError, setUrlError] = useState<string | undefined>(() => validateServiceUrl(jsonData.serviceUrl ?? ''));

  const onUrlChange = (event: ChangeEvent<HTMLInputElement>) => {
    const serviceUrl = event.target.value;
    setUrlError(undefined);
    onOptionsChange({ ...options, jsonData: { ...jsonData, serviceUrl } });
  };

  const onUrlBlur = () => {
    const serviceUrl = normalizeServiceUrl(jsonData.serviceUrl ?? '');
    setUrlError(validateServiceUrl(serviceUrl));
    if (serviceUrl !== jsonData.serviceUrl) {
      onOptionsChange({ ...options, jsonData: { ...jsonData, serviceUrl } });
    }
  };

  const secretProps = (key: SecretKey) => ({
    isConfigured: Boolean(secureJsonFields?.[key]),
    value: secureJsonData[key] ?? '',
    onChange: (event: ChangeEvent<HTMLInputElement>) =>
      onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: event.target.value } }),
    // Reset clears the stored secret: Grafana removes it when the field is flagged unset and sent empty.
    onReset: () =>
      onOptionsChange({
        ...options,
        secureJsonFields: { ...secureJsonFields, [key]: false },
        secureJsonData: { ...secureJsonData, [key]: '' },
      }),
  });

  return (
    <Stack direction="column" gap={1}>
      <Field
        label="Service URL"
        description="Where Grafana's server reaches the ruleperf query service, for example http://ruleperf:8080."
        invalid={Boolean(urlError)}
        error={urlError}
        required
      >
        <Input
          id="ruleperf-config-service-url"
          width={50}
          placeholder="http://ruleperf:8080"
          value={jsonData.serviceUrl ?? ''}
          onChange={onUrlChange}
          onBlur={onUrlBlur}
        />
      </Field>
      <Field
        label="API token"
        description="The service's API_TOKEN, for queries and variables. Stored encrypted; Grafana's data proxy sends it as a Bearer token and browsers never see it. Leave empty if the service runs without a token."
      >
        <SecretInput id="ruleperf-config-api-token" width={50} placeholder="API token" {...secretProps('apiToken')} />
      </Field>
      <Field
        label="Admin token (optional)"
        description="The service's API_ADMIN_TOKEN. Only needed if Grafana admins should flush the service's cache through Grafana (POST …/api/v1/invalidate, allowed to the Admin role only). Without it that call carries the API token, which a service with an admin token refuses. Leave empty unless you need it."
      >
        <SecretInput id="ruleperf-config-admin-token" width={50} placeholder="Not set" {...secretProps('adminToken')} />
      </Field>
    </Stack>
  );
}
