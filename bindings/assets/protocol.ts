// The ASSETS binding's shapes, shared by both halves: env.ASSETS.fetch(request) crosses as the
// `assets.fetch` op (protocol/wall.ts OPS.assetsFetch) with (bindingName, WireRequest) and comes
// back as a WireResponse whose body, when it has one, is a host stream the guest reads.

/** The binding type (BindingConfig['type'], and the add-on table's row). */
export const ASSETS_BINDING_TYPE = 'assets';

/** The add-on holding the guest half (sandbox/addons/assets.ts). */
export const ASSETS_ADDON = 'assets';
