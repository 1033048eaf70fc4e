//! `#[dispatch(Protocol)]`: a plugin enum plus its delegated protocol implementation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Fields, Ident, ItemEnum, Path, Type, Visibility};

struct Variant {
    attrs: Vec<Attribute>,
    name: Ident,
    ty: Type,
}

struct DispatchInput {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    protocol: Path,
    variants: Vec<Variant>,
}

/// Reads `#[dispatch(Protocol)] enum E { A(TypeA), ... }`: every variant must hold
/// exactly one unnamed field, the plugin type.
fn parse_input(attr: TokenStream, item: TokenStream) -> syn::Result<DispatchInput> {
    let protocol: Path = syn::parse2(attr)?;
    let item: ItemEnum = syn::parse2(item)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "plugin enums cannot be generic",
        ));
    }
    let mut variants = Vec::new();
    for v in item.variants {
        let ty = match &v.fields {
            Fields::Unnamed(f) if f.unnamed.len() == 1 => f.unnamed[0].ty.clone(),
            _ => {
                return Err(syn::Error::new_spanned(
                    &v,
                    "each variant holds exactly one plugin type: `Name(path::to::Type)`",
                ))
            }
        };
        if let Some((_, discriminant)) = &v.discriminant {
            return Err(syn::Error::new_spanned(
                discriminant,
                "plugin variants take no value",
            ));
        }
        variants.push(Variant {
            attrs: v.attrs,
            name: v.ident,
            ty,
        });
    }
    Ok(DispatchInput {
        attrs: item.attrs,
        vis: item.vis,
        name: item.ident,
        protocol,
        variants,
    })
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match parse_input(attr, item).and_then(try_expand) {
        Ok(tokens) => tokens,
        Err(err) => err.to_compile_error(),
    }
}

fn try_expand(input: DispatchInput) -> syn::Result<TokenStream> {
    let DispatchInput {
        attrs,
        vis,
        name,
        protocol,
        variants,
    } = input;
    for (i, v) in variants.iter().enumerate() {
        if variants[..i].iter().any(|w| w.name == v.name) {
            return Err(syn::Error::new_spanned(&v.name, "duplicate variant name"));
        }
    }
    if protocol.segments.len() < 2 || protocol.segments.iter().any(|s| !s.arguments.is_none()) {
        return Err(syn::Error::new_spanned(
            &protocol,
            "name the protocol by its full path, starting with its crate \
             (e.g. `aiperf_runtime::protocols::EndpointProtocol`)",
        ));
    }

    let segments: Vec<&Ident> = protocol.segments.iter().map(|s| &s.ident).collect();
    let krate = segments[0];
    let trait_name = segments[segments.len() - 1];
    let template = format_ident!("__aiperf_delegate_{}", trait_name);

    let variant_defs = variants.iter().map(|v| {
        let Variant { attrs, name, ty } = v;
        quote!(#(#attrs)* #name(#ty))
    });
    // A variant type that does not implement the protocol is reported on the variant.
    let checks = variants.iter().map(|v| {
        let ty = &v.ty;
        quote_spanned!(ty.span()=> __aiperf_implements::<#ty>();)
    });
    // Several names may share one implementation type: only unique types get `From`.
    let from_impls = variants.iter().filter_map(|v| {
        let v_ty = &v.ty;
        let shared = variants
            .iter()
            .filter(|w| type_key(&w.ty) == type_key(v_ty))
            .count()
            > 1;
        if shared {
            return None;
        }
        let var = &v.name;
        Some(quote! {
            impl ::core::convert::From<#v_ty> for #name {
                #[inline]
                fn from(plugin: #v_ty) -> Self {
                    #name::#var(plugin)
                }
            }
        })
    });
    let variant_names = variants.iter().map(|v| &v.name);

    Ok(quote! {
        #(#attrs)*
        #vis enum #name {
            #(#variant_defs,)*
        }

        #(#from_impls)*

        const _: () = {
            #[allow(dead_code)]
            fn __aiperf_implements<T: #protocol>() {}
            #[allow(dead_code)]
            fn __aiperf_check() {
                #(#checks)*
            }
        };

        #krate::#template! { #(#segments)::* ; #name ; #(#variant_names),* }
    })
}

fn type_key(ty: &Type) -> String {
    quote!(#ty).to_string()
}
