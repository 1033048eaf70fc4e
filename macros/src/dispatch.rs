//! `dispatch!`: a plugin enum plus its delegated protocol implementation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{braced, parenthesized, Attribute, Ident, Path, Token, Type, Visibility};

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

impl Parse for Variant {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let name: Ident = input.parse()?;
        let content;
        parenthesized!(content in input);
        let ty: Type = content.parse()?;
        Ok(Variant { attrs, name, ty })
    }
}

impl Parse for DispatchInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![enum]>()?;
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let protocol: Path = input.parse()?;
        let content;
        braced!(content in input);
        let variants = Punctuated::<Variant, Token![,]>::parse_terminated(&content)?;
        Ok(DispatchInput {
            attrs,
            vis,
            name,
            protocol,
            variants: variants.into_iter().collect(),
        })
    }
}

pub fn expand(input: TokenStream) -> TokenStream {
    match syn::parse2::<DispatchInput>(input).and_then(try_expand) {
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
    if variants.is_empty() {
        return Err(syn::Error::new(
            name.span(),
            "a plugin enum needs at least one variant: leave empty categories out",
        ));
    }
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
