// What every library call needs to know about who is asking, for the history and the logs.
export interface ActionContext {
  requestId: string;
  platform: string;
  // oned.log line (the driver writes it as "INFO: ..." on stderr); the library never touches stdio.
  log: (message: string) => void;
  // "kind/name" when the lease is for something that is not OpenNebula (pgipam lease, the API):
  // written into the lease and its history row
  owner?: string;
}

export const silentContext: ActionContext = { requestId: '-', platform: 'default', log: () => {} };
