// What every library call needs to know about who is asking, for the history and the logs.
export interface ActionContext {
  requestId: string;
  platform: string;
  // oned.log line (the driver writes it as "INFO: ..." on stderr); the library never touches stdio.
  log: (message: string) => void;
}

export const silentContext: ActionContext = { requestId: '-', platform: 'default', log: () => {} };
