//! `#[protocol]`: validate a trait and export its delegation template.

use proc_macro2::{Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};
use syn::visit::Visit;
use syn::{FnArg, GenericParam, ItemTrait, Pat, ReturnType, Signature, TraitItem};

/// Single-segment type names another crate can always resolve.
const PRELUDE: &[&str] = &[
    "Self",
    "Option",
    "Result",
    "Vec",
    "String",
    "Box",
    "bool",
    "char",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "Some",
    "None",
    "Ok",
    "Err",
    "Sized",
    "Send",
    "Sync",
    "Fn",
    "FnMut",
    "FnOnce",
    "Clone",
    "Copy",
    "Default",
    "Iterator",
    "IntoIterator",
    "AsRef",
    "ToString",
];

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(attr, item.clone()) {
        Ok(tokens) => tokens,
        // Keep the trait so uses of it do not produce a second wave of errors.
        Err(err) => {
            let compile_error = err.to_compile_error();
            quote!(#item #compile_error)
        }
    }
}

fn try_expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[protocol] takes no arguments",
        ));
    }
    let trait_item: ItemTrait = syn::parse2(item)?;
    if !trait_item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &trait_item.generics,
            "#[protocol] traits cannot be generic: a generated enum implements one instance",
        ));
    }

    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let mut methods = Vec::new();
    for item in &trait_item.items {
        match item {
            TraitItem::Fn(method) => match check_method(&method.sig) {
                Ok(args) => methods.push((method.sig.clone(), args)),
                Err(e) => push(e),
            },
            TraitItem::Type(t) => push(syn::Error::new_spanned(
                t,
                "#[protocol] traits cannot have associated types: each variant could pick a \
                 different one",
            )),
            TraitItem::Const(c) => push(syn::Error::new_spanned(
                c,
                "#[protocol] traits cannot have associated constants: each variant could pick \
                 a different value",
            )),
            other => push(syn::Error::new_spanned(
                other,
                "unsupported item in a #[protocol] trait",
            )),
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }

    let trait_name = &trait_item.ident;
    let template_name = format_ident!("__aiperf_delegate_{}", trait_name);
    let method_impls = methods.iter().map(|(sig, args)| delegate_method(sig, args));
    let body = dollar_crate(quote! {
        impl $($tr)::+ for $enum {
            #(#method_impls)*
        }
    });
    // An enum without variants (a category nothing links) still implements the protocol:
    // it has no values, so every method body is an empty match.
    let empty_impls = methods.iter().map(|(sig, _)| empty_method(sig));
    let empty_body = dollar_crate(quote! {
        impl $($tr)::+ for $enum {
            #(#empty_impls)*
        }
    });

    Ok(quote! {
        #[allow(async_fn_in_trait)]
        #trait_item

        #[doc(hidden)]
        #[macro_export]
        macro_rules! #template_name {
            ($($tr:ident)::+ ; $enum:ident ; $($var:ident),+ $(,)?) => {
                #body
            };
            ($($tr:ident)::+ ; $enum:ident ; ) => {
                #empty_body
            };
        }
    })
}

/// Checks one method and returns its argument names (receiver excluded).
fn check_method(sig: &Signature) -> syn::Result<Vec<Ident>> {
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if matches!(r.kind, syn::ReceiverKind::Typed(..)) => {
            return Err(syn::Error::new_spanned(
                r,
                "#[protocol] methods take `self`, `&self` or `&mut self`, not a typed receiver",
            ))
        }
        Some(FnArg::Receiver(_)) => {}
        _ => {
            return Err(syn::Error::new_spanned(
                sig,
                "#[protocol] methods must take `self`, `&self` or `&mut self`: constructors \
                 belong to the `Plugin` trait",
            ))
        }
    }
    let mut names = Vec::new();
    for input in inputs {
        let FnArg::Typed(typed) = input else {
            return Err(syn::Error::new_spanned(input, "unexpected second receiver"));
        };
        match &*typed.pat {
            Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => {
                names.push(p.ident.clone())
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "#[protocol] method arguments must be plain identifiers",
                ))
            }
        }
    }
    if sig.variadic.is_some() {
        return Err(syn::Error::new_spanned(
            sig,
            "variadic methods cannot be delegated",
        ));
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if let syn::Type::ImplTrait(_) = &**ty {
            if sig.asyncness.is_none() {
                return Err(syn::Error::new_spanned(
                    ty,
                    "return `impl Trait` is not delegable (each variant returns a different \
                     type); write an `async fn` or return a named type",
                ));
            }
        }
    }

    let generics: Vec<String> = sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.to_string()),
            _ => None,
        })
        .collect();
    let mut checker = PathChecker {
        generics,
        error: None,
    };
    checker.visit_signature(sig);
    match checker.error {
        Some(e) => Err(e),
        None => Ok(names),
    }
}

/// Rejects type paths the delegation template could not name from another crate.
struct PathChecker {
    generics: Vec<String>,
    error: Option<syn::Error>,
}

impl<'ast> Visit<'ast> for PathChecker {
    fn visit_type_path(&mut self, node: &'ast syn::TypePath) {
        if node.qself.is_none() {
            let path = &node.path;
            let first = path
                .segments
                .first()
                .map(|s| s.ident.to_string())
                .unwrap_or_default();
            let portable = path.leading_colon.is_some()
                || matches!(first.as_str(), "crate" | "std" | "core" | "alloc")
                || (path.segments.len() == 1
                    && (PRELUDE.contains(&first.as_str()) || self.generics.contains(&first)));
            if !portable {
                let e = syn::Error::new_spanned(
                    path,
                    format!(
                        "write `crate::...::{first}` (or a std path): the delegation is expanded \
                         in other crates, where `{first}` may not be in scope"
                    ),
                );
                match &mut self.error {
                    Some(all) => all.combine(e),
                    None => self.error = Some(e),
                }
            }
        }
        syn::visit::visit_type_path(self, node);
    }
}

/// The delegating body of one method: a match over the enum's variants.
fn delegate_method(sig: &Signature, args: &[Ident]) -> TokenStream {
    let name = &sig.ident;
    // Bindings cannot carry `mut` into the impl without unused-mut warnings.
    let mut sig = sig.clone();
    for input in sig.inputs.iter_mut() {
        if let FnArg::Typed(typed) = input {
            if let Pat::Ident(p) = &mut *typed.pat {
                p.mutability = None;
            }
        }
    }
    let call = quote!(__AiperfProtocol:: #name(__aiperf_variant, #(#args),*));
    let call = if sig.asyncness.is_some() {
        quote!(#call.await)
    } else {
        call
    };
    quote! {
        #[inline]
        #sig {
            // Imported once per body: the trait path cannot repeat inside the per-variant
            // repetition of the template.
            use $($tr)::+ as __AiperfProtocol;
            match self {
                $( $enum::$var(__aiperf_variant) => #call, )+
            }
        }
    }
}

/// The body of one method on an uninhabited enum.
fn empty_method(sig: &Signature) -> TokenStream {
    let mut sig = sig.clone();
    for input in sig.inputs.iter_mut() {
        if let FnArg::Typed(typed) = input {
            if let Pat::Ident(p) = &mut *typed.pat {
                p.mutability = None;
                // Arguments are never used: the method cannot be called.
                let name = format_ident!("_{}", p.ident);
                p.ident = name;
            }
        }
    }
    let by_value = matches!(sig.inputs.first(), Some(FnArg::Receiver(r)) if matches!(r.kind, syn::ReceiverKind::Value));
    let scrutinee = if by_value {
        quote!(self)
    } else {
        quote!(*self)
    };
    quote! {
        #sig {
            match #scrutinee {}
        }
    }
}

/// Replaces every `crate` identifier with `$crate`, so paths in the template resolve to
/// the protocol's crate wherever the template is expanded.
fn dollar_crate(tokens: TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tt| -> Vec<TokenTree> {
            match tt {
                TokenTree::Ident(ident) if ident == "crate" => vec![
                    TokenTree::Punct(Punct::new('$', Spacing::Alone)),
                    TokenTree::Ident(Ident::new("crate", Span::call_site())),
                ],
                TokenTree::Group(group) => {
                    let mut new =
                        proc_macro2::Group::new(group.delimiter(), dollar_crate(group.stream()));
                    new.set_span(group.span());
                    vec![TokenTree::Group(new)]
                }
                other => vec![other],
            }
        })
        .collect()
}
